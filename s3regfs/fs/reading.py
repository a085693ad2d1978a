"""ReadPath: ``read`` of an open file, from its local copy or from the bucket.

Owns the read wiring (docs/SEMANTICS.md, "read"): a node's local copy answers first; otherwise
the handle's :class:`~s3regfs.fs.readahead.ReadStream` reads the committed object, pinned to
its version (``etag``) and through the :class:`~s3regfs.fs.datacache.DataCache` for immutable
keys.  A version that is gone is re-pinned to the current one while no byte of it was returned
(or after this mount moved the object), else ``ESTALE``: a read never mixes two versions.
The fetcher checks that every ranged read is complete (a short read is ``EIO``, never zeros).
A handle that keeps reading a data-cached blob at random has the rest of that version fetched into
the data cache in the background (:mod:`s3regfs.fs.blobfill`, with the same pinned fetcher).

No lock of the namespace is taken here; a node's lock only to read its pinned version.
"""

from __future__ import annotations

import errno
import logging
import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from s3regfs.driver.base import StorageDriver
from s3regfs.driver.errors import ObjectChangedError
from s3regfs.fs.blobfill import FILL_AFTER, FILL_SOONER, FILL_WAIT, BlobFills
from s3regfs.fs.datacache import DataCache
from s3regfs.fs.directio import PAGE
from s3regfs.fs.errors import FsError
from s3regfs.fs.handles import Handle
from s3regfs.fs.metacache import MetaCache
from s3regfs.fs.options import FsOptions
from s3regfs.fs.readahead import ByteBudget, ReadStream
from s3regfs.fs.writeback import Node


class ReadPath:
    """Reads of one mount: local copies, read streams, version pins and the data cache."""

    def __init__(
        self,
        driver: StorageDriver,
        options: FsOptions,
        cache: MetaCache,
        pool: ThreadPoolExecutor,
        budget: ByteBudget,
        datacache: DataCache | None,
    ) -> None:
        self.driver = driver
        self.options = options
        self._cache = cache
        self._pool = pool
        self.budget = budget
        self.datacache = datacache
        self.fills = (
            BlobFills(
                pool, options.read_parallelism, budget, datacache, options.read_part_size, options.random_fill_max
            )
            if datacache is not None and options.random_fill_max > 0
            else None
        )

    def read(self, handle: Handle, offset: int, size: int) -> bytes | memoryview:
        if handle.flags & os.O_ACCMODE == os.O_WRONLY:
            raise FsError(errno.EBADF, f"handle {handle.fh} is not open for reading")
        node = handle.node
        learned = False
        for _ in range(4):  # a read, a re-pin (docs/SEMANTICS.md, "read"), the read again
            data = node.read_local(offset, size)
            if data is not None:
                return data
            with node.lock:
                key, total, etag, served = node.key, node.size, node.pinned_etag(), node.served
                moved = key != node.pinned_key  # this mount renamed it: pin the copy at the new key
                # a file of one page comes whole with every read: each is one version, no stat needed
                learn = etag is None and not served and not moved and node.path == key and total > PAGE
            if key is None:
                return b""
            cached = self.datacache is not None and self.datacache.applies(key)
            if (moved or learn) and not learned:  # pin the version before its first byte is returned
                learned = True
                if self._repin(node, key, etag):
                    continue
                if moved:
                    raise FsError(errno.ESTALE, f"{key}: replaced since this mount moved it", logging.ERROR)
            try:
                stream = self._reader(handle, key, total, etag)
                data = stream.read(offset, size)
            except ObjectChangedError:
                if self._repin(node, key, etag):
                    continue
                raise  # bytes of the pinned version were returned: ESTALE, never another version's
            if data and not served and not node.mark_served(key, total, etag):
                continue  # re-pinned meanwhile by another reader: these may be the old version's
            fills = self.fills
            if (
                fills is not None
                and cached
                and etag is not None
                and stream.direct_reads >= stream.fill_at
                and (
                    stream.direct_reads >= FILL_AFTER
                    or (stream.direct_reads >= FILL_SOONER and stream.direct_wait >= FILL_WAIT)
                )
            ):
                self._fill(fills, stream, key, total, etag)
            return data
        raise FsError(errno.ESTALE, f"{node.key}: keeps changing under the reader", logging.ERROR)

    def fill_counts(self) -> dict[str, int]:
        """Background fills of blobs read at random: started, completed, stopped early."""
        if self.fills is None:
            return {"fills_started": 0, "fills_completed": 0, "fills_stopped": 0}
        return self.fills.counts()

    def _fill(self, fills: BlobFills, stream: ReadStream, key: str, size: int, etag: str) -> None:
        """A handle reads this blob at random: fetch the rest of it into the data cache (fs/blobfill.py)."""
        # Random: most of its reads were outside any window (a sequential reader whose kernel
        # readahead ran past its window jumps too, but most of its reads are served by the window).
        random = 2 * stream.direct_reads > stream.reads
        if random and fills.start(key, size, etag, self._fetcher(key, size, etag)):
            stream.fill_at = sys.maxsize  # started, or never to be
        else:  # reading sequentially, or another fill runs: ask again after more random reads
            stream.fill_at = stream.direct_reads + FILL_AFTER

    def _repin(self, node: Node, key: str, etag: str | None) -> bool:
        """``key`` does not hold the version ``node`` reads: True when it may read the current one."""
        ok, fresh = node.repin(etag)
        if fresh is not None and node.path == key:
            self._cache.put(key, fresh)  # the next open reads the current version
        return ok

    def _reader(self, handle: Handle, key: str, size: int, etag: str | None) -> ReadStream:
        with handle.lock:
            if handle.reader is None or handle.reader_key != (key, size, etag):
                if handle.reader is not None:
                    handle.reader.close()
                opts = self.options
                handle.reader = ReadStream(
                    self._fetcher(key, size, etag),
                    size,
                    self._pool,
                    self.budget,
                    opts.readahead_min,
                    opts.readahead_max,
                    opts.read_part_size,
                    self._align(key),
                )
                handle.reader_key = (key, size, etag)
            return handle.reader

    def _align(self, key: str) -> int:
        cache = self.datacache
        return cache.block if cache is not None and cache.applies(key) else 1

    def _fetcher(self, key: str, size: int, etag: str | None) -> Callable[[int, int], bytes | memoryview]:
        """Reads of version ``etag`` of ``key`` (unpinned and never data-cached when it is None)."""
        cache = self.datacache
        cache = cache if cache is not None and cache.applies(key) and etag is not None else None

        def fetch(offset: int, length: int) -> bytes | memoryview:
            if cache is not None:
                hit = cache.read(key, size, etag, offset, length)  # type: ignore[arg-type]
                if hit is not None:
                    return hit
            data = self.driver.read_range(key, offset, length, etag)
            if len(data) != length:
                raise FsError(
                    errno.EIO,
                    f"{key}: short read at {offset}: {len(data)} of {length} bytes "
                    f"(the object changed or is shorter than its size {size})",
                    logging.ERROR,
                )
            if cache is not None:
                cache.store(key, size, etag, offset, data)  # type: ignore[arg-type]
            return data

        return fetch
