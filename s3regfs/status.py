"""``s3regfs status MNT``: what a running mount is doing, read from its daemon (docs/OPERATIONS.md "Status").

Owns both ends of the status channel, the read-only xattr ``user.s3regfs.status`` of the mount
root (:data:`~s3regfs.fs.core.STATUS_XATTR`), whose value is one JSON document:

* the daemon's side, :class:`Reporter`: the configuration without secrets (:func:`settings`:
  secret parameters as ``***``, and every registered secret redacted by :func:`s3regfs.logs.redact`),
  the uptime, the core's snapshot (uploads pending, in flight, committed, failed with their paths;
  lost files; caches; readahead and write buffers) and the S3 request counts;
* the command's side, :func:`run`: it reads the xattr (no configuration, no credentials, no
  request to S3) and prints the document as text, or as it is with ``--json``.  A path that is
  not the root of an s3regfs mount is one line with exit code USAGE.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from s3regfs import __version__, exitcodes, logs
from s3regfs.driver.observe import RequestCounts
from s3regfs.errors import UserError
from s3regfs.fs.core import STATUS_XATTR

if TYPE_CHECKING:
    from s3regfs.config.model import Config

SECRET_WORDS = ("secret", "token", "password", "accesskey")
"""A parameter or option whose name contains one of these is shown as ``***``."""
LIST_MAX = 50
"""At most this many paths per list (pending, in flight, failed, lost); the counts are complete."""
XATTR_BUDGET = 60_000
"""The document stays below the kernel's xattr size limit (64 KiB)."""
CACHE_SECONDS = 0.5
"""One rendering answers the size query and the read of one ``getfattr`` (the uptime changes)."""


def _hidden(key: str) -> bool:
    return any(word in key.lower() for word in SECRET_WORDS)


def _shown(values: dict[str, Any]) -> dict[str, Any]:
    return {k: ("***" if _hidden(k) and v not in (None, "") else v) for k, v in sorted(values.items())}


def settings(cfg: Config) -> dict[str, Any]:
    """The configuration of a mount as the status shows it: no secret."""
    options = {**dataclasses.asdict(cfg.fs)}
    for mode in ("file_mode", "dir_mode"):
        options[mode] = f"0{options[mode]:o}"
    options.update(
        allow_other=cfg.mount.allow_other, log_level=cfg.mount.log_level, log_file=cfg.mount.log_file,
        metrics=cfg.mount.metrics, view=cfg.mount.view,
    )
    return {
        "config_file": cfg.config_file,
        "driver": {"name": cfg.driver.name, "parameters": _shown(dict(cfg.driver.parameters))},
        "middleware": [{"name": m.name, "options": _shown(dict(m.options))} for m in cfg.middleware],
        "options": options,
    }


class Reporter:
    """The daemon's status document (the value of the root's ``user.s3regfs.status``)."""

    def __init__(self, mountpoint: str, snapshot: Callable[[], dict[str, Any]], *,
                 config: dict[str, Any] | None = None, requests: RequestCounts | None = None,
                 metrics: str | None = None, clock: Callable[[], float] = time.time) -> None:
        self.mountpoint = mountpoint
        self.started = clock()
        self._snapshot = snapshot
        self._config = config or {}
        self._requests = requests
        self._metrics = metrics
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, bytes] | None = None

    def document(self) -> dict[str, Any]:
        now = self._clock()
        doc: dict[str, Any] = {
            "mountpoint": self.mountpoint,
            "pid": os.getpid(),
            "version": __version__,
            "started": self.started,
            "uptime_seconds": round(now - self.started, 1),
            "metrics": f"http://{self._metrics}/metrics" if self._metrics else None,
            "config": self._config,
            "requests": self._requests.snapshot() if self._requests is not None else None,
            **self._snapshot(),
        }
        return doc

    def render(self) -> bytes:
        """The JSON document, secrets redacted, within the xattr size limit (cached for a moment)."""
        with self._lock:
            now = time.monotonic()
            if self._cached is not None and now - self._cached[0] < CACHE_SECONDS:
                return self._cached[1]
            data = _fit(self.document())
            self._cached = (now, data)
            return data


def _fit(doc: dict[str, Any]) -> bytes:
    uploads = doc.get("uploads", {})
    limit = LIST_MAX
    while True:
        for name in ("pending", "in_flight", "recent_failures", "lost"):
            items = uploads.get(name)
            if isinstance(items, list):
                uploads[f"{name}_count"] = uploads.get(f"{name}_count", len(items))
                uploads[name] = items[:limit]
        data = logs.redact(json.dumps(doc, default=str, sort_keys=True)).encode()
        if len(data) <= XATTR_BUDGET or limit == 0:
            return data
        limit //= 2


# -- the command -----------------------------------------------------------------------


def read(mountpoint: str) -> dict[str, Any]:
    """The status document of the mount at ``mountpoint``; a one-line UserError when there is none."""
    try:
        raw = os.getxattr(mountpoint, STATUS_XATTR)
    except FileNotFoundError:
        raise UserError(f"{mountpoint}: no such file or directory; give the mount point of an s3regfs mount",
                        exitcodes.USAGE) from None
    except OSError as exc:
        if exc.errno in (errno.ENOTCONN, errno.ECONNABORTED):
            raise UserError(f"{mountpoint}: the s3regfs daemon of this mount is gone (stale mount); "
                            f"unmount it with fusermount3 -u {mountpoint}", exitcodes.MOUNT) from None
        raise UserError(f"{mountpoint} is not the root of an s3regfs mount; give a mount point listed by "
                        "'findmnt -t fuse.s3regfs'", exitcodes.USAGE) from None
    try:
        doc = json.loads(raw)
    except ValueError:
        raise UserError(f"{mountpoint}: the status is not JSON; is it an s3regfs mount of another version?",
                        exitcodes.FAILURE) from None
    if not isinstance(doc, dict):
        raise UserError(f"{mountpoint}: the status is not a JSON object", exitcodes.FAILURE)
    return doc


def run(mountpoint: str, out: TextIO, *, as_json: bool = False) -> int:
    doc = read(mountpoint)
    if as_json:
        out.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    else:
        out.write(format_text(doc))
    return exitcodes.OK


def format_text(doc: dict[str, Any]) -> str:
    """The document as text for a terminal."""
    lines = [f"s3regfs {doc.get('version', '?')} mounted at {doc.get('mountpoint', '?')} (pid {doc.get('pid', '?')})"]
    started = doc.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if isinstance(started, (int, float)) else "?"
    lines.append(f"  up {_duration(doc.get('uptime_seconds'))} (since {when}), {doc.get('open_files', 0)} open file(s)")
    config = doc.get("config") or {}
    driver = config.get("driver") or {}
    if driver:
        params = ", ".join(f"{k}={v}" for k, v in (driver.get("parameters") or {}).items())
        lines.append(f"  storage: {driver.get('name')} {params}")
    for m in config.get("middleware") or []:
        lines.append(f"  middleware: {m.get('name')} " + ", ".join(f"{k}={v}" for k, v in (m.get("options") or {}).items()))
    options = config.get("options") or {}
    if options:
        lines.append("  options: " + ", ".join(f"{k}={_value(v)}" for k, v in options.items()))
    lines += _uploads(doc.get("uploads") or {})
    lines += _caches(doc)
    requests = doc.get("requests")
    if requests:
        parts = [f"{op} " + " ".join(f"{outcome} {n}" for outcome, n in by.items())
                 for op, by in (requests.get("by_operation") or {}).items()]
        lines.append(f"  S3 requests: {requests.get('total', 0)}" + (f" ({'; '.join(parts)})" if parts else ""))
        lines.append(f"  S3 object bytes: {_size(requests.get('bytes_received'))} read, "
                     f"{_size(requests.get('bytes_sent'))} written")
    if doc.get("metrics"):
        lines.append(f"  metrics: {doc['metrics']}")
    return "\n".join(lines) + "\n"


def _uploads(up: dict[str, Any]) -> list[str]:
    pending, flying = up.get("pending") or [], up.get("in_flight") or []
    failures, lost = up.get("recent_failures") or [], up.get("lost") or []
    lines = [
        f"  uploads: {up.get('pending_count', len(pending))} pending, {up.get('in_flight_count', len(flying))} in "
        f"flight, {up.get('committed', 0)} committed, {up.get('failed', 0)} failed, "
        f"{up.get('lost_count', len(lost))} file(s) closed with data lost"
    ]
    now = time.time()
    for u in flying:
        lines.append(f"    in flight  {u.get('path')}  {_size(u.get('size'))}  for {_duration(now - u.get('started', now))}")
    for u in pending:
        lines.append(f"    pending    {u.get('path')}  {_size(u.get('size'))}")
    for f in failures:
        lines.append(f"    failed     {f.get('path')}  {f.get('error')}")
    for path in lost:
        lines.append(f"    lost       {path}")
    return lines


def _caches(doc: dict[str, Any]) -> list[str]:
    lines = []
    meta = doc.get("metadata_cache") or {}
    if meta:
        lines.append(f"  metadata cache: {meta.get('entries', 0)} entries in memory, {meta.get('on_disk', 0)} names "
                     f"on disk, {meta.get('hits', 0)} hits, {meta.get('misses', 0)} misses")
    kernel = doc.get("kernel_entries") or {}
    if kernel:
        lines.append(f"  kernel entries: {kernel.get('handed', 0)} handed out (bound {kernel.get('limit', 0)}; "
                     f"0 = none), {kernel.get('dropped_directories', 0)} directories dropped")
    data = doc.get("data_cache")
    lines.append("  data cache: off" if not data else
                 f"  data cache: {_size(data.get('bytes'))} of {_size(data.get('max_bytes'))}, "
                 f"{data.get('hits', 0)} hits, {data.get('misses', 0)} misses")
    ahead = doc.get("readahead") or {}
    if ahead:
        lines.append(f"  readahead: {_size(ahead.get('bytes_in_use'))} in use of {_size(ahead.get('budget'))}")
    write = doc.get("write_buffers") or {}
    if write:
        lines.append(f"  write buffers: {_size(write.get('put_bytes_in_use'))} of single PUTs in use (of "
                     f"{_size(write.get('put_budget'))}), {write.get('multipart_uploads', 0)} multipart upload(s) "
                     f"(of {write.get('multipart_slots', 0)}), {write.get('streaming_files', 0)} file(s) streaming")
    return lines


def _value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ":".join(str(v) for v in value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def _size(value: Any) -> str:
    n = float(value or 0)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def _duration(seconds: Any) -> str:
    total = int(float(seconds or 0))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
