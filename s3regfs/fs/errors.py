"""FsError and THE table that maps every exception to an errno.

Owns: :class:`FsError` (an errno the core chose on purpose, with a message and
the level it is logged at), :class:`CacheDirError` (the cache directory is not
usable when the core is built; the mount words the advice), :data:`ERRNO_TABLE`
(exception class → errno, most specific class wins), :data:`CAUSE_TABLE` (how a
wrapped driver failure's cause refines ``EIO``), :func:`to_errno` and :func:`table_markdown`, which
renders both tables exactly as docs/SEMANTICS.md prints them (a test checks
that the document and this module agree).

Invariants: :func:`to_errno` never raises and never returns 0; an exception it
does not know is ``EIO`` and is logged with its traceback, so nothing escapes
to mfusepy (which would answer ``EINVAL``).
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from concurrent.futures import CancelledError
from dataclasses import dataclass

from s3regfs.driver.errors import (
    CredentialPairError,
    DriverError,
    DriverErrors,
    FilledBuffer,
    InvalidOffsetError,
    InvalidPathError,
    InvalidStorageDriverError,
    ObjectChangedError,
    ParameterError,
    PathNotFoundError,
    SkipDir,
    StorageDriverError,
    UnsupportedMethodError,
    WriterStateError,
)

log = logging.getLogger(__name__)


class FsError(Exception):
    """A deliberate POSIX error from the core: ``FsError(errno.ENOENT, "no such file: /a")``."""

    def __init__(self, err: int, message: str = "", log_level: int = logging.DEBUG) -> None:
        super().__init__(err, message)
        self.errno = err
        self.message = message or errno.errorcode.get(err, str(err))
        self.log_level = log_level

    def __str__(self) -> str:
        return f"[{errno.errorcode.get(self.errno, self.errno)}] {self.message}"


class CacheDirError(OSError):
    """The cache directory cannot hold spill files or the data cache (raised when the core is built).

    ``cache_dir`` is the directory and ``reason`` what the system said; the command line words
    the advice (``-o cache_dir``), the core knows nothing of options or exit codes.
    """

    def __init__(self, cache_dir: str, cause: OSError) -> None:
        super().__init__(cause.errno, cause.strerror or str(cause), cache_dir)
        self.cache_dir = cache_dir
        self.reason = cause.strerror or str(cause)


@dataclass(frozen=True)
class Rule:
    """One row of a table: what matches, the errno, and why."""

    match: str
    errno: int
    note: str


# -- causes of a DriverError -----------------------------------------------------------------------

_ACCESS_CODES = frozenset(
    {
        "AccessDenied",
        "Forbidden",
        "403",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AllAccessDisabled",
        "RequestTimeTooSkewed",
        "ExpiredToken",
    }
)
_TIMEOUT_CODES = frozenset({"RequestTimeout"})
_QUOTA_CODES = frozenset({"QuotaExceeded"})
_SIZE_CODES = frozenset({"EntityTooLarge"})

CAUSE_TABLE: tuple[Rule, ...] = (
    Rule("a timeout (`TimeoutError`, or a class whose name contains `Timeout`)", errno.ETIMEDOUT, "timeout"),
    Rule("an `OSError` with an errno (including one raised inside the driver)", 0, "that errno"),
    Rule(
        "S3 code " + ", ".join(sorted(_ACCESS_CODES)),
        errno.EACCES,
        "the credentials, clock or policy refuse it",
    ),
    Rule("S3 code " + ", ".join(sorted(_TIMEOUT_CODES)), errno.ETIMEDOUT, "the server gave up waiting"),
    Rule("S3 code " + ", ".join(sorted(_QUOTA_CODES)), errno.EDQUOT, "a quota of the store"),
    Rule(
        "S3 code " + ", ".join(sorted(_SIZE_CODES)), errno.EFBIG, "the object is larger than the store allows"
    ),
    Rule("anything else", errno.EIO, "transport or server failure; logged with the cause"),
)
"""How a :class:`DriverError`'s cause (its ``detail`` and ``__cause__`` chain) refines ``EIO``."""


def _s3_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code is not None:
            return str(code)
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return str(status) if status is not None else None
    return None


def _errno_of_cause(cause: BaseException) -> int | None:
    if isinstance(cause, FsError):
        return cause.errno
    if isinstance(cause, TimeoutError) or "Timeout" in type(cause).__name__:
        return errno.ETIMEDOUT
    if isinstance(cause, OSError) and cause.errno:
        return cause.errno
    code = _s3_code(cause)
    for codes, err in (
        (_ACCESS_CODES, errno.EACCES),
        (_TIMEOUT_CODES, errno.ETIMEDOUT),
        (_QUOTA_CODES, errno.EDQUOT),
        (_SIZE_CODES, errno.EFBIG),
    ):
        if code in codes:
            return err
    return None


def _driver_error_errno(exc: BaseException) -> int:
    """EIO, or a better errno found in the cause chain of a DriverError."""
    seen: set[int] = set()
    candidates: list[BaseException] = []
    detail = getattr(exc, "detail", None)
    if isinstance(detail, BaseException):
        candidates.append(detail)
    if exc.__cause__ is not None:
        candidates.append(exc.__cause__)
    while candidates:
        cause = candidates.pop(0)
        if id(cause) in seen:
            continue
        seen.add(id(cause))
        found = _errno_of_cause(cause)
        if found:
            return found
        for nxt in (getattr(cause, "detail", None), cause.__cause__, cause.__context__):
            if isinstance(nxt, BaseException):
                candidates.append(nxt)
    return errno.EIO


# -- the table -------------------------------------------------------------------------------------

Resolver = Callable[[BaseException], int]

_TABLE: tuple[tuple[type[BaseException], int | Resolver, str], ...] = (
    (FsError, lambda e: e.errno, "the errno the core chose (see each operation)"),  # type: ignore[attr-defined]
    (PathNotFoundError, errno.ENOENT, "the key does not exist"),
    (InvalidPathError, errno.EINVAL, "the driver refused the path (its path rule)"),
    (InvalidOffsetError, errno.EINVAL, "a negative offset"),
    (UnsupportedMethodError, errno.ENOTSUP, "the driver cannot do it"),
    (ObjectChangedError, errno.ESTALE, "the version of the file a handle reads from is gone (replaced)"),
    (WriterStateError, errno.EIO, "an upload in the wrong state (already closed/committed/cancelled)"),
    (DriverErrors, errno.EIO, "several per-key failures (e.g. a partial delete)"),
    (DriverError, _driver_error_errno, "EIO, refined by its cause (next table)"),
    (CredentialPairError, errno.EINVAL, "half a key pair (a configuration error, refused at start)"),
    (ParameterError, errno.EINVAL, "a bad driver parameter"),
    (InvalidStorageDriverError, errno.EIO, "no such driver (configuration)"),
    (SkipDir, errno.EIO, "a walk signal that escaped (a bug)"),
    (FilledBuffer, errno.EIO, "a walk signal that escaped (a bug)"),
    (StorageDriverError, errno.EIO, "any other driver error"),
    (TimeoutError, errno.ETIMEDOUT, "a local wait timed out"),
    (PermissionError, errno.EACCES, "local permission denied"),
    (
        CacheDirError,
        lambda e: getattr(e, "errno", None) or errno.EIO,
        "the cache directory is not usable (only when the mount starts)",
    ),
    (OSError, lambda e: getattr(e, "errno", None) or errno.EIO, "its own errno (EIO if it has none)"),
    (CancelledError, errno.EINTR, "an operation cancelled by shutdown"),
    (MemoryError, errno.ENOMEM, "out of memory"),
    (NotImplementedError, errno.ENOTSUP, "not implemented"),
    (Exception, errno.EIO, "anything else: a bug, logged with its traceback"),
)

ERRNO_TABLE: tuple[tuple[type[BaseException], int | Resolver], ...] = tuple((c, e) for c, e, _ in _TABLE)
"""Exception class → errno (or a function of the exception); the most specific class in the MRO wins."""

_BY_CLASS: dict[type[BaseException], int | Resolver] = dict(ERRNO_TABLE)


def _lookup(exc: BaseException) -> tuple[type[BaseException], int]:
    for cls in type(exc).__mro__:
        entry = _BY_CLASS.get(cls)
        if entry is not None:
            value = entry if isinstance(entry, int) else entry(exc)
            return cls, value or errno.EIO
    return Exception, errno.EIO


def to_errno(exc: BaseException, context: str = "") -> int:
    """The errno for ``exc``; logs it (unknown exceptions with their traceback). Never raises."""
    try:
        cls, err = _lookup(exc)
        where = f"{context}: " if context else ""
        if isinstance(exc, FsError):
            log.log(exc.log_level, "%s%s", where, exc)
        elif cls is Exception:
            log.error("%sunexpected error, answering EIO: %r", where, exc, exc_info=exc)
        elif isinstance(exc, PathNotFoundError):
            log.debug("%s%s", where, exc)
        else:
            log.warning("%s%s (%s)", where, exc, errno.errorcode.get(err, err))
        return err
    except Exception:
        log.exception("error while mapping %r to an errno", exc)
        return errno.EIO


def _errname(err: int) -> str:
    return errno.errorcode.get(err, str(err))


def table_markdown() -> str:
    """Both tables as docs/SEMANTICS.md prints them (between the errno-table markers)."""
    lines = ["| exception | errno | meaning |", "|---|---|---|"]
    for cls, entry, note in _TABLE:
        shown = _errname(entry) if isinstance(entry, int) else "see meaning"
        lines.append(f"| `{cls.__name__}` | {shown} | {note} |")
    lines += [
        "",
        "A `DriverError` is refined by its cause:",
        "",
        "| cause | errno | meaning |",
        "|---|---|---|",
    ]
    for rule in CAUSE_TABLE:
        shown = _errname(rule.errno) if rule.errno else "its own"
        lines.append(f"| {rule.match} | {shown} | {rule.note} |")
    return "\n".join(lines) + "\n"


def errno_of(exc: BaseException) -> int:
    """The errno :func:`to_errno` would give, without logging."""
    return _lookup(exc)[1]


def io_error(message: str, cause: BaseException | None = None) -> FsError:
    """An FsError for data that could not be saved or read, logged at ERROR.

    ``EIO`` unless the cause names something better (``EACCES``, ``ETIMEDOUT``,
    ``ENOSPC``, ...); a cause that would read as "no such file" or "invalid"
    is still ``EIO`` to the application, whose file does exist.
    """
    err = errno_of(cause) if cause is not None else errno.EIO
    if err in (errno.ENOENT, errno.EINVAL, errno.ENOTDIR, errno.EISDIR):
        err = errno.EIO
    detail = f": {cause}" if cause is not None else ""
    return FsError(err, message + detail, logging.ERROR)
