"""The s3regfs mount options: names, parsers, defaults as documented.

Owns the table that :mod:`s3regfs.config.sources` uses for the ``s3regfs:`` section
of the config file, the ``S3REGFS_<OPTION>`` environment variables and the
``-o`` mount options, and that docs/CONFIGURATION.md lists (a test checks
both agree); plus the sets of ``-o`` words handled elsewhere: options that
mount(8), fstab and systemd use (ignored here) and FUSE options passed
through to the kernel mount.

Every parser takes the raw value (a YAML scalar, or a string from ``-o`` or
the environment) and returns the typed value or raises
:class:`OptionValueError` whose message says what is expected.
"""

from __future__ import annotations

import grp
import math
import pwd
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from s3regfs import logs
from s3regfs.durations import DurationError, format_duration, parse_duration
from s3regfs.fs.options import FsOptions
from s3regfs.view import VIEWS

_TRUE = {"true", "yes", "on", "1", "t", "y"}
_FALSE = {"false", "no", "off", "0", "f", "n"}
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)
MAX_ID = 2**32 - 2


class OptionValueError(ValueError):
    """A value an option does not accept; the message says what it expects."""


# -- parsers ---------------------------------------------------------------------------


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise OptionValueError("not a boolean; use true or false")


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise OptionValueError("a boolean is not a number")
    try:
        number = float(value) if isinstance(value, (int, float)) else float(str(value).strip())
    except (ValueError, OverflowError):
        raise OptionValueError("not a number") from None
    if not math.isfinite(number):
        raise OptionValueError("not a finite number")
    return number


def parse_seconds(value: Any) -> float:
    """Seconds: a number (``5``, ``0.5``) or a Go duration (``5s``, ``1m30s``, ``500ms``)."""
    try:
        seconds = _number(value)
    except OptionValueError:
        if isinstance(value, (bool, int, float)):
            raise OptionValueError(
                "not a duration; use seconds (5) or a duration such as 5s or 1m30s"
            ) from None
        try:
            seconds = parse_duration(str(value).strip())
        except DurationError:
            raise OptionValueError(
                "not a duration; use seconds (5) or a duration such as 5s or 1m30s"
            ) from None
    if seconds < 0:
        raise OptionValueError("must not be negative")
    return seconds


def parse_optional_seconds(value: Any) -> float | None:
    """Like :func:`parse_seconds`, but ``none``/empty means "the driver's default" (None)."""
    if value is None or str(value).strip().lower() in ("", "none", "default"):
        return None
    seconds = parse_seconds(value)
    if seconds <= 0:
        raise OptionValueError("must be more than 0 seconds (or none for the default)")
    return seconds


def parse_size(value: Any) -> int:
    """Bytes: an integer, or a number with a binary unit (``64MiB``, ``64M``, ``1G``, ``512k``)."""
    if isinstance(value, bool):
        raise OptionValueError("a boolean is not a size; use bytes or e.g. 64MiB")
    if isinstance(value, int):
        size = int(value)
    else:
        match = _SIZE_RE.match(str(value))
        if match is None:
            raise OptionValueError(
                "not a size; use bytes or a number with k, M, G or T (binary units), e.g. 64MiB"
            )
        size = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    if size < 0:
        raise OptionValueError("must not be negative")
    return size


def size_parser(minimum: int) -> Callable[[Any], int]:
    """:func:`parse_size` with a lower bound."""

    def parse(value: Any) -> int:
        size = parse_size(value)
        if size < minimum:
            raise OptionValueError(f"must be at least {minimum} bytes")
        return size

    return parse


def _int(value: Any, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool):
        raise OptionValueError("a boolean is not an integer")
    try:
        number = int(value) if isinstance(value, int) else int(str(value).strip(), 10)
    except ValueError:
        raise OptionValueError("not an integer") from None
    if number < minimum or (maximum is not None and number > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise OptionValueError(f"must be {bound}")
    return number


def int_parser(minimum: int, maximum: int | None = None) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        return _int(value, minimum, maximum)

    return parse


def _is_name(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip()) and not re.fullmatch(r"[+-]?\d+", value.strip())


def parse_uid(value: Any) -> int:
    """A numeric uid or a user name."""
    if _is_name(value):
        try:
            return pwd.getpwnam(value.strip()).pw_uid
        except (KeyError, ValueError):  # ValueError: a NUL byte in the name
            raise OptionValueError("no such user; use a user name or a numeric uid") from None
    return _int(value, 0, MAX_ID)


def parse_gid(value: Any) -> int:
    """A numeric gid or a group name."""
    if _is_name(value):
        try:
            return grp.getgrnam(value.strip()).gr_gid
        except (KeyError, ValueError):  # ValueError: a NUL byte in the name
            raise OptionValueError("no such group; use a group name or a numeric gid") from None
    return _int(value, 0, MAX_ID)


def parse_mode(value: Any) -> int:
    """An octal permission mode: ``0644``, ``644`` or ``0o644`` (a YAML ``644`` is octal too)."""
    if isinstance(value, bool):
        raise OptionValueError("not an octal mode; use e.g. 0644")
    text = getattr(value, "text", "") or (oct(value) if isinstance(value, int) else str(value))
    text = text.strip().lower()
    text = text.removeprefix("0o")
    if not text or not re.fullmatch(r"[0-7]+", text):
        raise OptionValueError("not an octal mode; use e.g. 0644")
    mode = int(text, 8)
    if mode > 0o7777:
        raise OptionValueError("not a permission mode (more than 0o7777); use e.g. 0644")
    return mode


def parse_path(value: Any) -> str:
    text = str(value).strip() if not isinstance(value, (bool, int, float, list, dict)) else ""
    if not text.startswith("/"):
        raise OptionValueError("must be an absolute path")
    if "\0" in text:
        raise OptionValueError("must not contain NUL")
    return text


def parse_optional_path(value: Any) -> str | None:
    if value is None or str(value).strip().lower() in ("", "none"):
        return None
    return parse_path(value)


def parse_prefixes(value: Any) -> tuple[str, ...]:
    """Driver path prefixes: a YAML list, or a ``:``-separated string (``-o`` values cannot hold commas)."""
    items = value if isinstance(value, list) else str(value).split(":")
    prefixes = tuple(str(p).strip() for p in items if str(p).strip())
    for prefix in prefixes:
        if not prefix.startswith("/") or not prefix.endswith("/"):
            raise OptionValueError(f"{prefix!r} must start and end with / (e.g. /docker/registry/v2/blobs/)")
    return prefixes


def parse_view(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in VIEWS:
        raise OptionValueError(f"not a view; use {' or '.join(VIEWS)}")
    return text


def split_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) → (host, port); OptionValueError if it is not one."""
    host, sep, port = str(text).strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536 or any(c in host for c in "/ ,"):
        raise OptionValueError("not an address; use HOST:PORT, e.g. 127.0.0.1:9464 ([::1]:9464 for IPv6)")
    return host, int(port)


def parse_optional_address(value: Any) -> str | None:
    """``HOST:PORT`` to listen on, or ``none``/empty for off."""
    if value is None or str(value).strip().lower() in ("", "none", "off"):
        return None
    host, port = split_address(str(value))
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_level(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in logs.LEVELS:
        raise OptionValueError(f"not a log level; use one of {', '.join(logs.LEVELS)}")
    return text


# -- the table -------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """One mount option: where it goes, how it is parsed, its documented default."""

    name: str
    target: str  # "fs" (FsOptions) or "mount" (MountConfig)
    parse: Callable[[Any], Any]
    default: str  # exactly as docs/CONFIGURATION.md shows it
    help: str
    flag: bool = False  # may be given as a bare word in -o (means true)
    field: str = ""

    def __post_init__(self) -> None:
        if not self.field:
            object.__setattr__(self, "field", self.name)


_D = FsOptions.__dataclass_fields__


def _fs_default(name: str) -> Any:
    return _D[name].default


def _size_doc(name: str) -> str:
    size = int(_fs_default(name))
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size and size % scale == 0:
            return f"{size // scale}{unit}"
    return str(size)


def _seconds_doc(name: str) -> str:
    return format_duration(float(_fs_default(name)))


_OPTIONS = [
    Option(
        "uid", "fs", parse_uid, "the mounting user", "owner of every file and directory (uid or user name)"
    ),
    Option(
        "gid", "fs", parse_gid, "the mounting user's group", "group of every file and directory (gid or name)"
    ),
    Option(
        "file_mode",
        "fs",
        parse_mode,
        oct(_fs_default("file_mode")).replace("0o", "0"),
        "permission bits of files (octal)",
    ),
    Option(
        "dir_mode",
        "fs",
        parse_mode,
        oct(_fs_default("dir_mode")).replace("0o", "0"),
        "permission bits of directories (octal)",
    ),
    Option(
        "read_only",
        "fs",
        parse_bool,
        str(_fs_default("read_only")).lower(),
        "refuse every change with EROFS (-o ro / -o rw)",
        flag=True,
    ),
    Option(
        "metadata_ttl",
        "fs",
        parse_seconds,
        _seconds_doc("metadata_ttl"),
        "how long attributes and listings are cached; another mount's changes show up within it",
    ),
    Option(
        "digest_ttl",
        "fs",
        parse_seconds,
        _seconds_doc("digest_ttl"),
        "how long attributes and listings of digest paths (…/sha256/<hex> and below: content-addressed "
        "blobs and links) are cached; never shorter than metadata_ttl",
    ),
    Option(
        "negative_ttl", "fs", parse_seconds, _seconds_doc("negative_ttl"), "how long a missing name is cached"
    ),
    Option(
        "metadata_cache_entries",
        "fs",
        int_parser(0),
        str(_fs_default("metadata_cache_entries")),
        "most cached attribute/listing entries (names and listings in memory; what does not fit moves to the "
        "on-disk index)",
    ),
    Option(
        "metadata_index_entries",
        "fs",
        int_parser(0),
        str(_fs_default("metadata_index_entries")),
        "most names of listings evicted from memory kept on disk until they expire "
        "(cache_dir/metadata.sqlite, about 100 bytes a name); 0 = none",
    ),
    Option(
        "cache_dir",
        "fs",
        parse_path,
        "/var/cache/s3regfs (root), else ~/.cache/s3regfs",
        "local directory for spill files and the data cache",
    ),
    Option(
        "readahead_min",
        "fs",
        size_parser(4096),
        _size_doc("readahead_min"),
        "first readahead window of a sequential reader",
    ),
    Option("readahead_max", "fs", size_parser(4096), _size_doc("readahead_max"), "largest readahead window"),
    Option(
        "readahead_budget",
        "fs",
        parse_size,
        _size_doc("readahead_budget"),
        "readahead memory across all open files",
    ),
    Option(
        "read_parallelism",
        "fs",
        int_parser(1, 256),
        str(_fs_default("read_parallelism")),
        "parallel ranged GETs per readahead window",
    ),
    Option(
        "read_part_size",
        "fs",
        size_parser(4096),
        _size_doc("read_part_size"),
        "size of one ranged GET of a readahead window",
    ),
    Option(
        "data_cache_size",
        "fs",
        parse_size,
        _size_doc("data_cache_size"),
        "on-disk cache of immutable content (registry blobs); 0 disables it",
    ),
    Option(
        "immutable_prefixes",
        "fs",
        parse_prefixes,
        ":".join(_fs_default("immutable_prefixes")),
        "driver path prefixes whose content never changes (cacheable); ':'-separated",
    ),
    Option(
        "data_cache_block",
        "fs",
        size_parser(4096),
        _size_doc("data_cache_block"),
        "granularity of the data cache (bytes per cached block)",
    ),
    Option(
        "random_fill_max",
        "fs",
        parse_size,
        _size_doc("random_fill_max"),
        "a blob read at random is fetched whole into the data cache in the background when it is at most "
        "this large (and at most half of data_cache_size); 0 = never",
    ),
    Option(
        "write_parts_in_flight",
        "fs",
        int_parser(1, 64),
        str(_fs_default("write_parts_in_flight")),
        "multipart parts uploading at once per writer (memory about chunksize x (this + 1)); "
        "when set, it replaces the s3 parameter partsinflight",
    ),
    Option(
        "stream_threshold",
        "fs",
        parse_size,
        _size_doc("stream_threshold"),
        "a new file growing sequentially past this streams to S3 while written; smaller ones upload at close",
    ),
    Option(
        "max_streaming_writers",
        "fs",
        int_parser(0, 1024),
        str(_fs_default("max_streaming_writers")),
        "files streaming at once (each holds part buffers); others stage on disk and upload at close, "
        "at most this + 1 multipart uploads at once (the write memory bound)",
    ),
    Option(
        "unlink_download_max",
        "fs",
        parse_size,
        _size_doc("unlink_download_max"),
        "unlink of a file open for reading: up to this size it is copied locally and deleted at once",
    ),
    Option(
        "listing_walk_ahead",
        "fs",
        int_parser(0),
        str(_fs_default("listing_walk_ahead")),
        "keys of a subtree fetched with one flat listing during readdir (find/ls -R); 0 = off",
    ),
    Option(
        "lookup_subtree",
        "fs",
        int_parser(0, 1000),
        str(_fs_default("lookup_subtree")),
        "a cold lookup of a directory with at most this many files below it learns them all in the same "
        "LIST (stat by path: one request per new directory); at most 1000, 0 = off",
    ),
    Option(
        "kernel_entries",
        "fs",
        int_parser(0),
        str(_fs_default("kernel_entries")),
        "names handed to the kernel before the least recently listed directories are dropped from its "
        "cache, bounding libfuse's memory (about 200 bytes a name); 0 = leave it to the kernel",
    ),
    Option(
        "url_duration",
        "fs",
        parse_optional_seconds,
        "none",
        "lifetime of the user.s3regfs.url xattr URLs; none = the driver/middleware default; S3 presigned URLs "
        "(no cloudfront middleware) live at most 168h (7 days), longer is refused",
    ),
    Option(
        "allow_other",
        "mount",
        parse_bool,
        "false",
        "let other users use the mount (needs user_allow_other in /etc/fuse.conf for non-root)",
        flag=True,
    ),
    Option("log_level", "mount", parse_level, logs.DEFAULT_LEVEL, "debug, info, warning, error or critical"),
    Option(
        "log_file",
        "mount",
        parse_optional_path,
        "none",
        "append logs to this file, with timestamps, besides stderr (default: stderr only; background mounts: "
        "syslog, or cache_dir/s3regfs.log without /dev/log); follows logrotate, reopened on SIGHUP",
    ),
    Option(
        "mount_timeout",
        "mount",
        parse_seconds,
        "1m0s",
        "how long a background mount (mount(8), fstab) waits for the mount to answer",
    ),
    Option(
        "metrics",
        "mount",
        parse_optional_address,
        "none",
        "serve Prometheus metrics at http://HOST:PORT/metrics (e.g. 127.0.0.1:9464); none = off "
        "(docs/OPERATIONS.md)",
    ),
    Option(
        "view",
        "mount",
        parse_view,
        "raw",
        "what the mount shows: raw (the bucket as it is) or oci (every repository as an OCI image layout, "
        "read-only; docs/VIEWS.md)",
    ),
]

MOUNT_OPTIONS: dict[str, Option] = {o.name: o for o in _OPTIONS}
"""Every s3regfs mount option by name, in documentation order."""

FUSE_FLAGS = frozenset(
    {
        "nosuid",
        "suid",
        "nodev",
        "dev",
        "noexec",
        "exec",
        "noatime",
        "atime",
        "relatime",
        "norelatime",
        "strictatime",
        "nostrictatime",
        "sync",
        "async",
        "dirsync",
        "default_permissions",
        "allow_root",
        "auto_unmount",
    }
)
"""``-o`` words passed through to the FUSE mount unchanged."""

FUSE_VALUED = frozenset({"fsname", "max_read"})
"""``-o name=value`` options passed through to the FUSE mount unchanged."""

IGNORED = frozenset(
    {
        "defaults",
        "auto",
        "noauto",
        "user",
        "nouser",
        "users",
        "owner",
        "group",
        "_netdev",
        "nofail",
        "nodiratime",
        "diratime",
        "lazytime",
        "nolazytime",
        "loud",
        "silent",
        "comment",
        "nosymfollow",
        "bg",
        "fg",
        "helper",
        "nonempty",
    }
)
"""``-o`` words meant for mount(8), fstab or systemd (and ``x-*``): accepted and ignored."""


def is_ignored_mount_option(key: str) -> bool:
    """True for options that mount(8)/fstab/systemd handle (``_netdev``, ``nofail``, ``x-systemd.*``...)."""
    return key in IGNORED or key.startswith("x-")
