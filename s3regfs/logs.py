"""Logging set-up: ``LEVEL name: message`` lines, their targets, reopening, and secret redaction.

Owns the log format and targets of the ``s3regfs`` process:

* ``stderr`` (the default): ``2025-01-31 12:00:00,123 WARNING s3regfs.fs.core: message``,
  with a timestamp, unless journald receives the stream (``--systemd``, or ``$JOURNAL_STREAM``
  naming stderr: :func:`s3regfs.systemd.journal_receives`): journald adds its own;
* with ``systemd=True`` each line starts with the syslog priority instead
  (``<4>WARNING ...``) so journald files it under the right level;
* ``file``: the same lines, with a timestamp, appended to a file; a
  :class:`logging.handlers.WatchedFileHandler`, so a file renamed away by logrotate is
  followed by a new one at the next line, and :func:`reopen` (SIGHUP) reopens it at once;
* ``syslog``: to ``/dev/log`` (used by background mounts, whose stderr is gone).  Without
  that socket, :func:`log_to_fallback` appends to ``FALLBACK_NAME`` in the cache directory
  instead, so a background mount never loses every line.

Every handler carries :class:`RedactingFilter`, which replaces each value
registered with :func:`add_secret` (the S3 secret key, session tokens, ...)
by ``***`` in the message, its arguments and any traceback, so no record can
print a secret whatever the module that logs it; and escapes control
characters in the message (:func:`escape_controls`), so a name quoted in a
message (a file name from a user, a key from the bucket) cannot forge log lines.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import threading
from typing import IO

from s3regfs import systemd as sd

LEVELS = ("debug", "info", "warning", "error", "critical")
DEFAULT_LEVEL = "info"
REDACTED = "***"
FORMAT = "%(levelname)s %(name)s: %(message)s"
STAMPED = "%(asctime)s " + FORMAT
FALLBACK_NAME = "s3regfs.log"
"""The log file of a background mount that has no syslog socket, in its cache directory."""
NOISY = ("botocore", "boto3", "urllib3", "s3transfer")

_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}

_secrets_lock = threading.Lock()
_secrets: set[str] = set()
_installed: list[logging.Handler] = []
_syslog_missing = False  # the last set-up asked for syslog, and /dev/log was not there


def add_secret(value: object) -> None:
    """Never print ``value`` (ignored when empty or shorter than 4 characters)."""
    text = "" if value is None else str(value)
    if len(text) >= 4:
        with _secrets_lock:
            _secrets.add(text)


_CONTROLS = {c: f"\\x{c:02x}" for c in [*range(0x09), *range(0x0A, 0x20), 0x7F]}
_CONTROLS.update({0x85: "\\x85", 0x2028: "\\u2028", 0x2029: "\\u2029"})


def escape_controls(text: str) -> str:
    """``text`` with control characters (newlines included, tab excepted) as ``\\xNN`` escapes.

    A message is one log line whatever it quotes: a file name such as
    ``"x\\nCRITICAL forged"`` cannot forge a record.
    """
    return text.translate(_CONTROLS)


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    with _secrets_lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record so that no registered secret survives formatting."""

    _plain = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string: keep what we can, redacted
            message = f"{record.msg!r} % {record.args!r}"
        record.msg = escape_controls(redact(message))
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._plain.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class JournalFormatter(logging.Formatter):
    """``<priority>LEVEL name: message`` (journald's SyslogLevelPrefix)."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        prefix = f"<{_PRIORITY.get(record.levelno, 6)}>"
        return "\n".join(prefix + line for line in text.split("\n"))


def parse_level(value: str) -> int:
    """``"debug"`` → ``logging.DEBUG``; ValueError naming the choices otherwise."""
    name = str(value).strip().lower()
    if name not in LEVELS:
        raise ValueError(f"unknown log level {value!r}; use one of {', '.join(LEVELS)}")
    return int(getattr(logging, name.upper()))


def _stream_handler(systemd: bool, stream: IO[str] | None) -> logging.Handler:
    target = stream or sys.stderr
    handler = logging.StreamHandler(target)
    if systemd:
        handler.setFormatter(JournalFormatter(FORMAT))
    else:
        handler.setFormatter(logging.Formatter(FORMAT if _journald_reads(target) else STAMPED))
    return handler


def _journald_reads(stream: IO[str]) -> bool:
    try:
        fd = stream.fileno()
    except (OSError, ValueError):  # io.StringIO, a closed stream
        return False
    return sd.journal_receives(fd)


def _file_handler(path: str) -> logging.Handler:
    handler = logging.handlers.WatchedFileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(STAMPED))
    return handler


def _syslog_handler() -> logging.Handler:
    handler = logging.handlers.SysLogHandler(address="/dev/log")
    handler.setFormatter(logging.Formatter("s3regfs[%(process)d]: " + FORMAT))
    return handler


def setup_logging(
    level: str | int = DEFAULT_LEVEL,
    *,
    systemd: bool = False,
    log_file: str | None = None,
    syslog: bool = False,
    stderr: bool = True,
    stream: IO[str] | None = None,
) -> None:
    """Configure the root logger: records at ``level`` and above to each chosen target.

    Targets: stderr (unless ``stderr=False``), ``log_file`` (appended, with
    timestamps), syslog (``/dev/log``).  Libraries (botocore, urllib3) stay at
    WARNING unless ``level`` is debug, and then only reach INFO: their DEBUG
    output is huge and full of headers.  Raises OSError if the log file
    cannot be opened.
    """
    global _syslog_missing
    levelno = parse_level(level) if isinstance(level, str) else level
    handlers: list[logging.Handler] = []
    if stderr:
        handlers.append(_stream_handler(systemd, stream))
    if log_file:
        handlers.append(_file_handler(log_file))
    missing = False
    if syslog:
        try:
            if not syslog_available():
                raise FileNotFoundError("/dev/log")
            handlers.append(_syslog_handler())
        except OSError:
            missing = True
    remove_handlers()  # ours from an earlier call; others' handlers (pytest's) stay
    root = logging.getLogger()
    for handler in handlers:
        _install(handler)
    _syslog_missing = missing
    root.setLevel(levelno)
    logging.captureWarnings(True)  # Python warnings become log records (prefixed, redacted) too
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.INFO if levelno <= logging.DEBUG else logging.WARNING)


def remove_handlers() -> None:
    """Remove and close the handlers :func:`setup_logging` installed (a command run in-process ends)."""
    root = logging.getLogger()
    while _installed:
        old = _installed.pop()
        root.removeHandler(old)
        old.close()


def _install(handler: logging.Handler) -> None:
    handler.addFilter(RedactingFilter())
    _installed.append(handler)
    logging.getLogger().addHandler(handler)


def log_to_fallback(directory: str) -> str | None:
    """When syslog was asked for but has no socket: append to ``directory/FALLBACK_NAME`` too.

    A background mount's stderr is gone once it detaches; this file keeps its lines (with
    timestamps, following logrotate like ``log_file``).  The first line written there says
    so (and reaches stderr too, before detaching).  Returns the file's path; None when
    nothing was needed, or when the file cannot be opened (logged as a warning).
    """
    if not _syslog_missing:
        return None
    path = os.path.join(directory, FALLBACK_NAME)
    log = logging.getLogger(__name__)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        handler = _file_handler(path)
    except OSError as exc:
        log.warning("no syslog socket (/dev/log) and %s cannot be opened (%s): the log lines of this "
                    "background mount are lost; set log_file", path, exc.strerror or exc)
        return None
    _install(handler)
    log.warning("no syslog socket (/dev/log): logging to %s", path)
    return path


def reopen() -> list[str]:
    """Close and reopen every log file now (SIGHUP after logrotate); the paths reopened.

    A file handler's lock is held only while its stream is swapped, so other threads'
    records wait at most for that.  A file that cannot be reopened keeps its old stream.
    """
    reopened = []
    for handler in list(_installed):
        if not isinstance(handler, logging.FileHandler):
            continue
        handler.acquire()
        try:
            old, handler.stream = handler.stream, handler._open()
            if isinstance(handler, logging.handlers.WatchedFileHandler):
                handler._statstream()
        except OSError as exc:
            sys.stderr.write(f"s3regfs: cannot reopen the log file {handler.baseFilename}: {exc}\n")
            continue
        finally:
            handler.release()
        if old is not None:
            old.close()
        reopened.append(handler.baseFilename)
    return reopened


def syslog_available() -> bool:
    """True when ``/dev/log`` exists (syslog or journald listens)."""
    return os.path.exists("/dev/log")
