"""The driver errors: upstream texts (docs/DRIVERS.md §C2), JSON forms, equality and name stamping."""

from __future__ import annotations

import json

import pytest

from s3regfs.driver import (
    DriverError,
    DriverErrors,
    FilledBuffer,
    InvalidOffsetError,
    InvalidPathError,
    InvalidStorageDriverError,
    PathNotFoundError,
    SkipDir,
    StorageDriverError,
    UnsupportedMethodError,
    WriterStateError,
)


@pytest.mark.parametrize(
    "error,text",
    [
        (PathNotFoundError("/a/b", "s3aws"), "s3aws: Path not found: /a/b"),
        (InvalidPathError("/a b", "inmemory"), "inmemory: invalid path: /a b"),
        (InvalidOffsetError("/f", -1, "s3aws"), "s3aws: invalid offset: -1 for path: /f"),
        (UnsupportedMethodError("inmemory"), "inmemory: unsupported method"),
        (DriverError(ValueError("boom"), "s3aws"), "s3aws: boom"),
        (DriverError("plain text", "s3aws"), "s3aws: plain text"),
        (DriverErrors([], "s3aws"), "s3aws: <nil>"),
        (DriverErrors([ValueError("one")], "s3aws"), "s3aws: one"),
        (DriverErrors(["one", ValueError("two")], "s3aws"), "s3aws: errors:\none\ntwo\n"),
        (SkipDir(), "skip this directory"),
        (FilledBuffer(), "we have enough entries"),
        (InvalidStorageDriverError("nope"), "StorageDriver not registered: nope"),
        (WriterStateError("already closed"), "already closed"),
    ],
)
def test_texts(error: Exception, text: str) -> None:
    assert str(error) == text


def test_driver_error_json() -> None:
    assert json.loads(DriverError(ValueError("boom"), "s3aws").to_json()) == {
        "driver": "s3aws",
        "detail": "boom",
    }


@pytest.mark.parametrize(
    "errs,details",
    [([], []), (["a"], ["a"]), ([ValueError("x"), "y"], ["x", "y"])],
)
def test_driver_errors_json(errs: list, details: list) -> None:
    assert json.loads(DriverErrors(errs, "s3aws").to_json()) == {"driver": "s3aws", "details": details}


def test_driver_errors_json_empty_list_not_null() -> None:
    assert '"details": []' in DriverErrors([], "s3aws").to_json()


def test_path_errors_compare_by_type_path_and_driver() -> None:
    assert PathNotFoundError("/a", "x") == PathNotFoundError("/a", "x")
    assert PathNotFoundError("/a", "x") != PathNotFoundError("/a", "y")
    assert PathNotFoundError("/a", "x") != PathNotFoundError("/b", "x")
    assert PathNotFoundError("/a", "x") != InvalidPathError("/a", "x")
    assert len({PathNotFoundError("/a", "x"), PathNotFoundError("/a", "x")}) == 1


def test_with_driver_sets_only_an_empty_name() -> None:
    err = PathNotFoundError("/a")
    assert str(err) == ": Path not found: /a"
    assert err.with_driver("inmemory") is err
    assert str(err) == "inmemory: Path not found: /a"
    err.with_driver("other")
    assert err.driver_name == "inmemory"


def test_hierarchy() -> None:
    """Interface errors share one base; writer and walk signals and factory errors do not."""
    for cls in (
        PathNotFoundError,
        InvalidPathError,
        InvalidOffsetError,
        UnsupportedMethodError,
        DriverError,
        DriverErrors,
    ):
        assert issubclass(cls, StorageDriverError)
    for cls in (WriterStateError, SkipDir, FilledBuffer, InvalidStorageDriverError):
        assert not issubclass(cls, StorageDriverError)


def test_fields() -> None:
    err = InvalidOffsetError("/f", -7, "d")
    assert (err.path, err.offset, err.driver_name) == ("/f", -7, "d")
    cause = KeyError("k")
    assert DriverError(cause, "d").detail is cause
    assert DriverErrors([cause], "d").errs == [cause]


def test_invalid_middleware_kind() -> None:
    assert (
        str(InvalidStorageDriverError("x", kind="StorageMiddleware")) == "StorageMiddleware not registered: x"
    )
