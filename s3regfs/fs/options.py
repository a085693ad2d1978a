"""FsOptions: the typed options of the filesystem core.

Built and validated by :mod:`s3regfs.config` (mount options, the s3regfs
section of the config file, CLI flags); the core only reads it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

MiB = 1024 * 1024


@dataclass(frozen=True)
class FsOptions:
    """Everything the core needs to know about how the mount behaves."""

    uid: int = field(default_factory=os.getuid)
    gid: int = field(default_factory=os.getgid)
    file_mode: int = 0o644
    dir_mode: int = 0o755
    read_only: bool = False
    # Metadata cache: attributes and listings live this long (seconds); this
    # mount's own changes invalidate at once.
    metadata_ttl: float = 4.0
    # ... except those of digest paths (``.../sha256/<hex>`` and below: content-addressed blobs and
    # links, never changed while they exist), which live this long (never shorter than metadata_ttl).
    digest_ttl: float = 600.0
    negative_ttl: float = 1.0
    metadata_cache_entries: int = 100_000
    # Names of listings evicted from memory kept on disk (cache_dir/metadata.sqlite, about 100 bytes
    # a name) until they expire, so a walk larger than memory is still known; 0 = none.
    metadata_index_entries: int = 10_000_000
    # Local state: spill files for non-sequential writes, the data cache.
    cache_dir: str = "/var/cache/s3regfs"
    # Reads.
    readahead_min: int = 1 * MiB
    readahead_max: int = 64 * MiB
    readahead_budget: int = 96 * MiB
    read_parallelism: int = 8
    # Size of one ranged request of a readahead window (the window is fetched as parallel parts).
    read_part_size: int = 16 * MiB
    # Local data cache for immutable content (registry blobs), size-bounded LRU on disk; 0 disables.
    data_cache_size: int = 1024 * MiB
    immutable_prefixes: tuple[str, ...] = ("/docker/registry/v2/blobs/",)
    # Granularity of the data cache (bytes per cached block).
    data_cache_block: int = 256 * 1024
    # A handle that reads a data-cached blob at random has the blob fetched whole into the data cache
    # in the background, when it is at most this large (and at most half the data cache); 0 = never.
    random_fill_max: int = 512 * MiB
    # Writes: parts in flight per sequential writer (memory ~ chunksize x this).
    write_parts_in_flight: int = 4
    # A written file smaller than this at close is uploaded with one put_content; a file that grows
    # past it sequentially starts streaming into the driver's FileWriter.
    stream_threshold: int = 8 * MiB
    # At most this many files stream at once (each holds the writer's part buffers); others stage
    # on disk and upload at close, where at most this many + 1 multipart uploads run at once
    # (s3regfs.fs.uploadgate: the write memory bound of docs/SEMANTICS.md).
    max_streaming_writers: int = 2
    # unlink of a file open only for reading: a file up to this size is copied to a local spill
    # file and deleted at once; a larger one is hidden at once and deleted at its last close.
    unlink_download_max: int = 8 * MiB
    # readdir fetches up to this many keys of the directory's whole subtree with one flat walk
    # (resumed as the traversal proceeds), so find/ls -R cost about one LIST per 1000 keys; 0 = off.
    listing_walk_ahead: int = 1000
    # A cold lookup of a directory with at most this many files below it (at any depth) learns them
    # all with the same request (the driver's stat_tree: one LIST on S3): a registry blob's
    # <hex>/data, a tag's links, a whole fan-out directory of blobs; 0 = plain stat.
    lookup_subtree: int = 256
    # Names handed to the kernel (listed or looked up) before the least recently listed directories
    # are dropped from its cache, so libfuse's node table (about 200 bytes a name) stays bounded
    # however large the bucket (s3regfs.kernelentries); 0 = leave it to the kernel.
    kernel_entries: int = 100_000
    # xattr user.s3regfs.url lifetime override (seconds); None = the driver/middleware default.
    url_duration: float | None = None
