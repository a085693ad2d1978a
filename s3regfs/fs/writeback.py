"""Open-file content: the local copy, the streaming upload, and commits.

Owns :class:`Node`, the state every handle on one file shares (like an inode), and
:class:`WriteContext`, what nodes need from the mount (driver, spill area, pool, options).

A node is in one of two content states:

* **remote**: no local copy; reads go to the committed object (``key``, ``remote.size``);
* **local**: a spill file holds the whole content (``size`` bytes).  It is created by
  ``O_TRUNC``/a new file (empty), or by the first write/truncate of an existing object
  (downloaded with parallel ranged reads).  Reads, any write pattern and truncate then work on
  the spill file.

On top of a local copy, a file that grows by appending past ``stream_threshold`` (a new
file written with ``dd``/``cp``, a registry upload, ...) also **streams** into
``driver.writer(key)``: the driver uploads parts while the application writes, and
``commit`` only finishes the last part.  A write anywhere but the end, a truncate, or a
failed part cancels the stream; the local copy is complete, so nothing is lost and the
commit uploads from it.  The :class:`~s3regfs.fs.uploadgate.UploadGate` bounds the memory: at
most ``max_streaming_writers`` nodes stream at once, and uploads at close wait for their turn.

``commit`` (called by flush, fsync and the last release) uploads a dirty node: through the
stream, with one ``put_content`` below ``stream_threshold``, or through a fresh writer fed
from the local copy.  An object appears in the bucket only complete.  A failed commit raises
an ``EIO``-family :class:`FsError`, leaves the node dirty (the next flush/fsync/release tries
again) and never reports the data as saved.  After a commit, further writes make the node
dirty again and the next commit uploads the whole file again (S3 objects cannot be appended).
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace

from s3regfs.driver.base import FileWriter, StorageDriver
from s3regfs.driver.errors import ObjectChangedError, PathNotFoundError
from s3regfs.fs.errors import FsError, io_error
from s3regfs.fs.listing import meta_of
from s3regfs.fs.metacache import Meta, Override
from s3regfs.fs.options import FsOptions
from s3regfs.fs.spill import SpillArea, SpillFile
from s3regfs.fs.uploadgate import UploadGate
from s3regfs.fs.uploadledger import UploadLedger

log = logging.getLogger(__name__)

_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
FEED_PIECE = 1024 * 1024
"""Bytes read from a local copy per ``writer.write`` (the writer buffers whole parts itself)."""


@dataclass
class WriteContext:
    """What a node needs from the mount."""

    driver: StorageDriver
    options: FsOptions
    spill: SpillArea
    pool: ThreadPoolExecutor
    gate: UploadGate
    on_commit: Callable[[Node, str, Meta], None]
    uploads: UploadLedger = field(default_factory=UploadLedger)


class Node:
    """The shared state of one open file."""

    def __init__(self, ctx: WriteContext, path: str, remote: Meta | None) -> None:
        self.ctx = ctx
        self.lock = threading.RLock()
        self.path: str | None = path  # the name in the namespace; None once unlinked
        self.key: str | None = path if remote is not None else None  # where the committed bytes are
        self.remote = remote  # the committed version; remote reads are pinned to its etag at pinned_key
        self.pinned_key = self.key  # differs from key after this mount moved the object (rename)
        self.served = False  # a byte of the remote version was returned: it may no longer be re-pinned
        self.refs = 0
        self.local: SpillFile | None = None
        self.size = remote.size if remote is not None else 0
        self.mtime = remote.mtime if remote is not None else time.time()
        self.dirty = False
        self.stream: FileWriter | None = None
        self.stream_slot = False  # holds one of the gate's streaming slots
        self.stream_ok = True
        self.copy_lost = False
        self.failed: BaseException | None = None  # data that can no longer be saved
        self.deferred_delete = False
        self.override: Override | None = None  # fchmod/futimens of the file once unlinked

    # -- state ---------------------------------------------------------------------------------

    @property
    def unlinked(self) -> bool:
        return self.path is None

    def meta(self) -> Meta:
        return Meta(False, self.size, self.mtime)

    def is_remote(self) -> bool:
        """True when reads go to the committed object (no local copy)."""
        return self.local is None

    # -- name, references and attributes (the namespace moves call these) ---------------------

    def add_ref(self) -> None:
        """One more handle (call under :attr:`lock`)."""
        self.refs += 1

    def drop_ref(self) -> int:
        """One handle fewer (call under :attr:`lock`); the number left."""
        self.refs -= 1
        return self.refs

    def move_to(self, path: str) -> None:
        """The file is now named ``path``; its committed bytes moved there with it (if any)."""
        self.path = path
        if self.key is not None:
            self.key = path

    def move_key(self, key: str) -> None:
        """The key awaiting a deferred delete was moved (a rename of its directory)."""
        self.key = key

    def detach(self) -> None:
        """The name is gone (unlinked or taken): the handles keep the content, nothing is uploaded.

        The commit drops any stream and the dirty flag (an unlinked file is never uploaded).
        """
        with self.lock:
            self.path = None
            self.commit()

    def drop_key(self) -> None:
        """The key no longer holds this file for its handles (deleted or reused): no deferred delete."""
        with self.lock:
            self.key = None
            self.deferred_delete = False

    def defer_delete(self) -> None:
        """Unlinked while open and too large to copy: the key is deleted at the last close."""
        with self.lock:
            self.deferred_delete = True

    def mark_served(self, key: str, size: int, etag: str | None) -> bool:
        """A byte of version ``etag`` was returned; False when the node was re-pinned meanwhile."""
        with self.lock:
            if (self.key, self.size, self.pinned_etag()) != (key, size, etag):
                return False
            self.served = True
            return True

    def set_override(self, **fields: object) -> None:
        """fchmod/fchown/futimens of an unlinked file: the attributes live with the open file."""
        values = {k: v for k, v in fields.items() if v is not None}
        with self.lock:
            self.override = replace(self.override or Override(), **values)  # type: ignore[arg-type]

    def adopt_override(self, override: Override | None) -> None:
        """The attributes the name had, kept by the open file once it is unlinked."""
        with self.lock:
            if override is not None and self.override is None:
                self.override = replace(override, base=None)

    # -- content changes -----------------------------------------------------------------------

    def truncate_to_empty(self) -> None:
        """O_TRUNC or a new file: the content becomes empty and must be committed."""
        with self.lock:
            self._cancel_stream("truncated", force=True)
            self._close_local()
            self.local = self.ctx.spill.new()
            self.size = 0
            self.copy_lost = False
            self._touch()

    def write(self, offset: int, data: bytes | bytearray | memoryview, append: bool) -> int:
        if not data:
            return 0
        with self.lock:
            self._check_failed()
            if append:
                offset = self.size
            self.ensure_local()
            at_end = offset == self.size
            if self.stream is not None and not at_end:
                self._cancel_stream(f"write at {offset}, not at the end ({self.size})")
            self._store(offset, data, at_end)
            if self.stream is not None:
                self._stream_write(data)
            self.size = max(self.size, offset + len(data))
            self._touch()
            if at_end and self.stream is None and self._may_stream():
                self._start_stream()
            return len(data)

    def truncate(self, length: int) -> None:
        with self.lock:
            self._check_failed()
            if length == self.size:
                return
            if length == 0:
                self.truncate_to_empty()
                return
            self.ensure_local()
            self._cancel_stream("truncate")
            self._require_copy()
            assert self.local is not None
            try:
                self.local.truncate(length)
            except OSError as exc:
                raise FsError(exc.errno or errno.EIO, f"{self.path}: cannot stage the truncate: {exc}")
            self.size = length
            self._touch()

    def read_local(self, offset: int, length: int) -> bytes | None:
        """Bytes from the local copy, or None when reads must go to the bucket."""
        with self.lock:
            if self.local is None:
                return None
            if self.copy_lost:
                raise io_error(f"{self.path}: cannot read back: the local copy was dropped (disk full)")
            length = min(length, self.size - offset)
            if length <= 0:
                return b""
            data = self.local.pread(offset, length)
            if len(data) < length:  # a hole at the end (truncate up): zeros
                data += bytes(length - len(data))
            return data

    def ensure_local(self) -> None:
        """Make a local copy of the committed object (downloaded in parallel ranged reads).

        The download is pinned to the node's version (asked first when the mount does not know it);
        when that is gone it is re-pinned (once) if :meth:`repin` allows it, else ``ESTALE``: a copy
        never mixes two versions.
        """
        if self.local is not None:
            return
        part = self.ctx.options.read_part_size
        if self.pinned_etag() is None and self.size > part and self.key is not None and not self.served:
            self.repin(None)  # a version this mount does not know (its own commit): the copy of parts is of one
        for first in (True, False):
            spill = self.ctx.spill.new()
            etag = self.pinned_etag()
            try:
                if self.size > 0 and self.key is not None:
                    self._download(spill, self.key, self.size, etag)
                break
            except ObjectChangedError as exc:
                spill.close()
                if not (first and self.repin(etag)[0]):
                    raise io_error(f"{self.key}: the version this file was opened at is gone", exc) from exc
            except BaseException:
                spill.close()
                raise
        self.local = spill

    def served_version(self) -> str | None:
        """The version this file's handles read from the bucket at its own name, once a byte of it was
        returned and nothing local was made of it (no copy, nothing to upload); else None."""
        with self.lock:
            clean = self.local is None and self.stream is None and not self.dirty and self.failed is None
            if not (clean and self.served and self.path is not None and self.key == self.path):
                return None
            return self.pinned_etag()

    def pinned_etag(self) -> str | None:
        """The version remote reads of ``key`` must get (None: unknown, or not pinned yet after a move)."""
        if self.remote is None or self.key != self.pinned_key:
            return None
        return self.remote.etag

    def repin(self, failed: str | None) -> tuple[bool, Meta | None]:
        """``key`` no longer holds the pinned version ``failed``: go on with the version there now?

        Allowed while no byte of the pinned version was returned (a stale cached version, replaced
        before the first read), and after this mount moved the object here (same size: its own
        copy); never for an unlinked file (the key then names another file).  Returns (True when
        reads may go on, also when another thread re-pinned first; what ``key`` holds now).
        """
        with self.lock:
            key = self.key
        if key is None:
            return False, None
        try:
            fresh = meta_of(self.ctx.driver.stat(key))
        except PathNotFoundError:
            return False, None
        with self.lock:
            if self.key != key or self.local is not None or self.pinned_etag() != failed:
                return True, fresh  # changed meanwhile: try again
            moved = self.pinned_key != key
            if fresh.is_dir or (self.path is None and not moved):
                return False, fresh
            if self.served and not (moved and fresh.size == self.size):
                return False, fresh
            if not moved and failed is not None:  # (None: the version was not known yet, nothing was replaced)
                log.info("%s: replaced before this handle read from it; reading the current version", key)
            if failed is None and not moved and self.remote is not None and fresh.size == self.size:
                # only its version was learnt: the attributes shown do not change under a reader
                # (tar: "file changed as we read it"), the server's mtime comes with the next refresh
                fresh = replace(fresh, mtime=self.remote.mtime, local=self.remote.local)
            self.remote, self.size, self.mtime, self.pinned_key = fresh, fresh.size, fresh.mtime, key
            return True, fresh

    def _download(self, spill: SpillFile, key: str, size: int, etag: str | None = None) -> None:
        part = max(1, self.ctx.options.read_part_size)

        def piece(start: int) -> None:
            length = min(part, size - start)
            data = self.ctx.driver.read_range(key, start, length, etag)
            if len(data) != length:
                raise FsError(errno.EIO, f"{key}: short read at {start} ({len(data)} of {length} bytes)")
            spill.pwrite(start, data)

        futures = [self.ctx.pool.submit(piece, start) for start in range(0, size, part)]
        try:
            for future in futures:
                future.result()
        except BaseException as exc:
            for future in futures:
                future.cancel()
            wait(futures)  # no piece may write into the spill file after the caller closes it
            if isinstance(exc, ObjectChangedError):
                raise
            if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
                raise FsError(exc.errno, f"{key}: no local space to stage the file: {exc}") from exc
            if isinstance(exc, Exception):
                raise io_error(f"{key}: cannot download the object to modify it", exc) from exc
            raise

    # -- commit --------------------------------------------------------------------------------

    def commit(self) -> bool:
        """Upload the content if dirty; True when something was uploaded. Raises FsError on failure."""
        with self.lock:
            if self.failed is not None:
                raise io_error(f"{self.path or self.key}: data could not be saved", self.failed)
            if not self.dirty:
                return False
            if self.path is None:  # unlinked: nothing to save
                self._cancel_stream("unlinked", force=True)
                self.dirty = False
                return False
            path = self.path
            try:
                with self.ctx.uploads.uploading(path, self.size):
                    etag = self._upload(path)
            except FsError:
                raise
            except Exception as exc:
                if self.copy_lost:
                    self.failed = exc
                raise io_error(f"{path}: upload failed, the data is NOT saved", exc) from exc
            self.dirty = False
            self.stream_ok = True
            self.key = path
            self.remote = Meta(False, self.size, self.mtime, etag=etag)  # None: learnt before the first read
            self.pinned_key = path  # what is at the key is this commit, not a move
            self.ctx.on_commit(self, path, self.remote)
            return True

    def _upload(self, path: str) -> str | None:
        """Upload the content to ``path``; the version made (driver extension 8) or None."""
        if self.stream is not None:
            writer, self.stream = self.stream, None
            try:
                etag = writer.commit()
            except BaseException:
                _quietly(writer.cancel)
                self._release_stream_slot()
                if not self.copy_lost:
                    log.warning("%s: the streaming upload failed; retrying from the local copy", path)
                    return self._upload(path)
                raise
            _quietly(writer.close)
            self._release_stream_slot()
            return etag
        self._require_copy()
        data_len = self.size
        if data_len < self.ctx.options.stream_threshold or self.local is None:
            with self.ctx.gate.put(data_len):
                data = self.local.pread(0, data_len) if self.local is not None else b""
                if len(data) < data_len:
                    data += bytes(data_len - len(data))
                return self.ctx.driver.put_content(path, data)
        with self.ctx.gate.multipart():
            writer = self.ctx.driver.writer(path)
            try:
                self._feed(writer, data_len)
                etag = writer.commit()
            except BaseException:
                _quietly(writer.cancel)
                raise
            _quietly(writer.close)
            return etag

    def _feed(self, writer: FileWriter, upto: int) -> None:
        """Copy the local copy into ``writer`` in small pieces (the writer holds the parts)."""
        assert self.local is not None
        part = FEED_PIECE
        for start in range(0, upto, part):
            data = self.local.pread(start, min(part, upto - start))
            if len(data) < min(part, upto - start):
                data += bytes(min(part, upto - start) - len(data))
            writer.write(data)

    # -- release -------------------------------------------------------------------------------

    def close(self) -> None:
        """Drop the local copy and any stream (after the last handle is gone)."""
        with self.lock:
            self._cancel_stream("closed", force=True)
            self._close_local()

    # -- internals -----------------------------------------------------------------------------

    def _touch(self) -> None:
        self.dirty = True
        self.mtime = time.time()

    def _check_failed(self) -> None:
        if self.failed is not None:
            raise io_error(f"{self.path or self.key}: earlier data could not be saved", self.failed)

    def _require_copy(self) -> None:
        if self.copy_lost:
            raise FsError(
                errno.ENOSPC,
                f"{self.path}: the local copy was dropped (disk full while streaming); "
                "only appending writes are possible until the file is closed",
            )

    def _store(self, offset: int, data: bytes | bytearray | memoryview, at_end: bool) -> None:
        if self.copy_lost:
            if self.stream is None or not at_end:
                self._require_copy()
            return
        assert self.local is not None
        try:
            self.local.pwrite(offset, data)
        except OSError as exc:
            if exc.errno in _NO_SPACE and self.stream is not None and at_end:
                log.warning(
                    "%s: no local space (%s); continuing to stream without a local copy", self.path, exc
                )
                self.copy_lost = True
                return
            raise FsError(exc.errno or errno.EIO, f"{self.path}: cannot stage the write locally: {exc}")

    def _may_stream(self) -> bool:
        opts = self.ctx.options
        return (
            self.stream_ok
            and self.path is not None
            and self.size >= opts.stream_threshold
            and not self.copy_lost
            and self.local is not None
        )

    def _start_stream(self) -> None:
        if not self.ctx.gate.try_stream():
            return
        self.stream_slot = True
        assert self.path is not None
        try:
            writer = self.ctx.driver.writer(self.path)
        except Exception as exc:  # noqa: BLE001 - staging locally still works
            self._release_stream_slot()
            self.stream_ok = False
            log.warning(
                "%s: cannot start a streaming upload (%s); uploading at close instead", self.path, exc
            )
            return
        self.stream = writer
        try:
            self._feed(writer, self.size)
        except Exception as exc:  # noqa: BLE001
            self._stream_failed(exc)

    def _stream_write(self, data: bytes | bytearray | memoryview) -> None:
        assert self.stream is not None
        try:
            self.stream.write(data)
        except Exception as exc:  # noqa: BLE001
            self._stream_failed(exc)

    def _stream_failed(self, exc: BaseException) -> None:
        if self.copy_lost:
            self.failed = exc
            self._cancel_stream("failed", force=True)
            raise io_error(f"{self.path}: the upload failed and there is no local copy", exc) from exc
        log.warning(
            "%s: streaming upload failed (%s); the file will be uploaded from its local copy", self.path, exc
        )
        self._cancel_stream("failed")
        self.stream_ok = False

    def _cancel_stream(self, why: str, force: bool = False) -> None:
        if self.stream is None:
            return
        if self.copy_lost and not force:
            self._require_copy()
        writer, self.stream = self.stream, None
        log.debug("%s: streaming upload cancelled (%s)", self.path, why)
        _quietly(writer.cancel)
        self._release_stream_slot()
        self.stream_ok = False

    def _release_stream_slot(self) -> None:
        if self.stream_slot:
            self.stream_slot = False
            self.ctx.gate.end_stream()

    def _close_local(self) -> None:
        if self.local is not None:
            local, self.local = self.local, None
            local.close()


def _quietly(fn: Callable[[], object]) -> None:
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - cleanup of an abandoned upload
        log.debug("ignored while cleaning up an upload: %s", exc)
