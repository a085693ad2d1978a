"""The storage driver errors (port of distribution's ``storagedriver`` error types).

Every error carries the name of the driver that raised it; the validating
wrapper (:mod:`s3regfs.driver.checked`) stamps the name on errors coming from
an inner driver, so inner drivers may leave it empty.  Messages match the
upstream ``Error()`` texts.
"""

from __future__ import annotations

import json


class StorageDriverError(Exception):
    """Base of every error a storage driver raises through its interface."""

    driver_name: str = ""

    def with_driver(self, name: str) -> StorageDriverError:
        """Return this error with ``driver_name`` set (if it was empty)."""
        if not self.driver_name:
            self.driver_name = name
        return self


class _PathError(StorageDriverError):
    """Shared fields and equality of the path-carrying errors."""

    def __init__(self, path: str, driver_name: str = "") -> None:
        super().__init__(path)
        self.path = path
        self.driver_name = driver_name

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and other.path == self.path  # type: ignore[attr-defined]
            and other.driver_name == self.driver_name  # type: ignore[attr-defined]
        )

    def __hash__(self) -> int:
        return hash((type(self), self.path, self.driver_name))


class PathNotFoundError(_PathError):
    """The path does not exist (``PathNotFoundError``)."""

    def __str__(self) -> str:
        return f"{self.driver_name}: Path not found: {self.path}"


class InvalidPathError(_PathError):
    """The path does not match the path rules (``InvalidPathError``)."""

    def __str__(self) -> str:
        return f"{self.driver_name}: invalid path: {self.path}"


class InvalidOffsetError(StorageDriverError):
    """A negative reader offset (``InvalidOffsetError``)."""

    def __init__(self, path: str, offset: int, driver_name: str = "") -> None:
        super().__init__(path, offset)
        self.path = path
        self.offset = offset
        self.driver_name = driver_name

    def __str__(self) -> str:
        return f"{self.driver_name}: invalid offset: {self.offset} for path: {self.path}"


class UnsupportedMethodError(StorageDriverError):
    """The driver does not support the method (``ErrUnsupportedMethod``)."""

    def __init__(self, driver_name: str = "") -> None:
        super().__init__()
        self.driver_name = driver_name

    def __str__(self) -> str:
        return f"{self.driver_name}: unsupported method"


class ObjectChangedError(StorageDriverError):
    """The object at ``path`` is no longer the version ``etag`` a read was pinned to (s3regfs only).

    Raised by ``read_range(path, offset, length, etag=...)`` (S3: HTTP 412 PreconditionFailed on
    the ``If-Match`` GET), so that a reader never gets bytes of two versions of one file.
    """

    def __init__(self, path: str, etag: str | None, driver_name: str = "") -> None:
        super().__init__(path, etag)
        self.path = path
        self.etag = etag
        self.driver_name = driver_name

    def __str__(self) -> str:
        return f"{self.driver_name}: object changed: {self.path} is no longer version {self.etag}"


class DriverError(StorageDriverError):
    """Any other failure, enclosing the original exception (``storagedriver.Error``)."""

    def __init__(self, detail: BaseException | str, driver_name: str = "") -> None:
        super().__init__(detail)
        self.detail = detail
        self.driver_name = driver_name

    def __str__(self) -> str:
        return f"{self.driver_name}: {self.detail}"

    def to_json(self) -> str:
        return json.dumps({"driver": self.driver_name, "detail": str(self.detail)})


class DriverErrors(StorageDriverError):
    """Several failures at once, e.g. per-key DeleteObjects errors (``storagedriver.Errors``)."""

    def __init__(self, errs: list[BaseException | str], driver_name: str = "") -> None:
        super().__init__(errs)
        self.errs = list(errs)
        self.driver_name = driver_name

    def __str__(self) -> str:
        if not self.errs:
            return f"{self.driver_name}: <nil>"
        if len(self.errs) == 1:
            return f"{self.driver_name}: {self.errs[0]}"
        body = "".join(f"{e}\n" for e in self.errs)
        return f"{self.driver_name}: errors:\n{body}"

    def to_json(self) -> str:
        return json.dumps({"driver": self.driver_name, "details": [str(e) for e in self.errs]})


class WriterStateError(Exception):
    """A FileWriter call in the wrong state: ``already closed``/``committed``/``cancelled``.

    FileWriter errors are raw upstream (no driver name), so this is not a
    :class:`StorageDriverError`.
    """


class InvalidStorageDriverError(Exception):
    """No driver or middleware registered under that name."""

    def __init__(self, name: str, kind: str = "StorageDriver") -> None:
        super().__init__(name)
        self.name = name
        self.kind = kind

    def __str__(self) -> str:
        return f"{self.kind} not registered: {self.name}"


class ParameterError(ValueError):
    """An invalid driver or middleware parameter; the message names the parameter."""


class CredentialPairError(ParameterError):
    """Half a key pair (an access key without its secret key, or the reverse): refused, never completed
    from the AWS credential chain.  ``given`` and ``missing`` name the two halves; ``source`` says where
    ``given`` came from when the driver knows it (``None`` for its own parameters: the caller knows)."""

    def __init__(self, given: str, missing: str, source: str | None = None) -> None:
        super().__init__(
            f"{given} is set but {missing} is not: give both, or neither for the AWS credential chain"
        )
        self.given = given
        self.missing = missing
        self.source = source


class SkipDir(Exception):
    """Raised by a walk function: do not descend into this directory (``ErrSkipDir``)."""

    def __str__(self) -> str:
        return "skip this directory"


class FilledBuffer(Exception):
    """Raised by a walk function: stop the walk, without error (``ErrFilledBuffer``)."""

    def __str__(self) -> str:
        return "we have enough entries"
