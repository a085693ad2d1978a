"""The errno table: complete, right, and the same as the one in docs/SEMANTICS.md."""

from __future__ import annotations

import errno
import inspect
import logging
import re
from pathlib import Path

import pytest

import s3regfs.driver.errors as driver_errors
from s3regfs.driver.errors import (
    DriverError,
    DriverErrors,
    InvalidOffsetError,
    InvalidPathError,
    ObjectChangedError,
    PathNotFoundError,
    UnsupportedMethodError,
    WriterStateError,
)
from s3regfs.fs import errors
from s3regfs.fs.errors import FsError, to_errno

DOC = Path(__file__).resolve().parents[2] / "docs" / "SEMANTICS.md"


def test_every_driver_exception_class_has_an_entry() -> None:
    classes = [
        obj
        for _, obj in inspect.getmembers(driver_errors, inspect.isclass)
        if issubclass(obj, BaseException)
        and obj.__module__ == driver_errors.__name__
        and not obj.__name__.startswith("_")
    ]
    assert len(classes) >= 10
    table = {cls for cls, _ in errors.ERRNO_TABLE}
    missing = [cls.__name__ for cls in classes if cls not in table]
    assert missing == []


def test_every_fs_exception_class_has_an_entry() -> None:
    import importlib
    import pkgutil

    import s3regfs.fs

    fs_classes = set()
    for info in pkgutil.iter_modules(s3regfs.fs.__path__):
        if info.name == "operations":  # the adapter (imports mfusepy) defines no exceptions of its own
            continue
        module = importlib.import_module(f"s3regfs.fs.{info.name}")
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                fs_classes.add(obj)
    assert FsError in fs_classes
    table = {cls for cls, _ in errors.ERRNO_TABLE}
    assert [c.__name__ for c in fs_classes if c not in table] == []


class _ClientError(Exception):
    """What botocore's ClientError looks like (the core never imports botocore)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.response = {"Error": {"Code": code}}


class ReadTimeoutError(Exception):
    """Named like botocore's."""


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (FsError(errno.ENOTEMPTY, "x"), errno.ENOTEMPTY),
        (PathNotFoundError("/a", "s3aws"), errno.ENOENT),
        (InvalidPathError("/a b", "s3aws"), errno.EINVAL),
        (InvalidOffsetError("/a", -1, "s3aws"), errno.EINVAL),
        (UnsupportedMethodError("s3aws"), errno.ENOTSUP),
        (ObjectChangedError("/a", '"etag"', "s3aws"), errno.ESTALE),
        (WriterStateError("already committed"), errno.EIO),
        (DriverErrors(["a", "b"], "s3aws"), errno.EIO),
        (DriverError("boom", "s3aws"), errno.EIO),
        (DriverError(_ClientError("AccessDenied"), "s3aws"), errno.EACCES),
        (DriverError(_ClientError("SlowDown"), "s3aws"), errno.EIO),
        (DriverError(_ClientError("EntityTooLarge"), "s3aws"), errno.EFBIG),
        (DriverError(ReadTimeoutError("read timeout"), "s3aws"), errno.ETIMEDOUT),
        (DriverError(TimeoutError("timed out"), "s3aws"), errno.ETIMEDOUT),
        (DriverError(ConnectionRefusedError(errno.ECONNREFUSED, "refused"), "s3aws"), errno.ECONNREFUSED),
        (TimeoutError(), errno.ETIMEDOUT),
        (OSError(errno.ENOSPC, "full"), errno.ENOSPC),
        (OSError("no errno"), errno.EIO),
        (PermissionError(), errno.EACCES),
        (MemoryError(), errno.ENOMEM),
        (NotImplementedError(), errno.ENOTSUP),
        (KeyError("bug"), errno.EIO),
        (ValueError("bug"), errno.EIO),
    ],
)
def test_to_errno(exc: BaseException, expected: int) -> None:
    assert to_errno(exc) == expected


def test_driver_error_cause_found_through_the_chain() -> None:
    try:
        try:
            raise _ClientError("InvalidAccessKeyId")
        except _ClientError as inner:
            raise DriverError("wrapped", "s3aws") from inner
    except DriverError as exc:
        assert to_errno(exc) == errno.EACCES


def test_unknown_exceptions_are_eio_and_logged_with_traceback(caplog: pytest.LogCaptureFixture) -> None:
    try:
        {}["missing"]
    except KeyError as exc:
        with caplog.at_level(logging.ERROR, logger="s3regfs.fs.errors"):
            assert to_errno(exc, "read('/x')") == errno.EIO
    record = caplog.records[-1]
    assert record.exc_info is not None and "read('/x')" in record.getMessage()


def test_to_errno_never_raises_and_never_returns_zero() -> None:
    class Weird(Exception):
        @property
        def errno(self) -> int:  # type: ignore[override]
            raise RuntimeError("no")

    assert to_errno(Weird()) == errno.EIO
    assert to_errno(OSError(0, "zero")) == errno.EIO


def test_semantics_doc_prints_the_same_table() -> None:
    text = DOC.read_text()
    match = re.search(r"<!-- errno-table:begin -->\n(.*?)<!-- errno-table:end -->", text, re.DOTALL)
    assert match is not None, "docs/SEMANTICS.md lacks the errno-table markers"
    assert match.group(1).strip() == errors.table_markdown().strip()
