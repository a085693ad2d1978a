"""CheckedDriver (port of ``base.Base``): validation before delegation, name stamping, raw readers/writers."""

from __future__ import annotations

import io
from datetime import datetime, timezone
from typing import Any

import pytest

from s3regfs.driver import (
    CheckedDriver,
    DriverError,
    FileInfo,
    FilledBuffer,
    InvalidOffsetError,
    InvalidPathError,
    PathNotFoundError,
    SkipDir,
    UnsupportedMethodError,
    is_valid_path,
)
from s3regfs.driver.base import FileWriter, StorageDriver

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


class _Writer(FileWriter):
    def write(self, data: Any) -> int:
        raise OSError("raw writer error")

    def size(self) -> int:
        return 0

    def close(self) -> None: ...

    def commit(self) -> None: ...

    def cancel(self) -> None: ...


class Recorder(StorageDriver):
    """Records every call; raises ``self.fail`` (if set) from every method."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.fail: BaseException | None = None
        self.stream = io.BytesIO(b"data")
        self.file_writer = _Writer()

    @property
    def name(self) -> str:
        return "recorder"

    def _record(self, method: str, *args: Any) -> None:
        self.calls.append((method, args))
        if self.fail is not None:
            raise self.fail

    def get_content(self, path: str) -> bytes:
        self._record("get_content", path)
        return b"data"

    def put_content(self, path: str, content: bytes) -> None:
        self._record("put_content", path, content)

    def reader(self, path: str, offset: int = 0) -> Any:
        self._record("reader", path, offset)
        return self.stream

    def read_range(self, path: str, offset: int, length: int, etag: str | None = None) -> bytes:
        self._record("read_range", path, offset, length)
        return b"da"

    def writer(self, path: str, append: bool = False) -> FileWriter:
        self._record("writer", path, append)
        return self.file_writer

    def stat(self, path: str) -> FileInfo:
        self._record("stat", path)
        return FileInfo(path, 1, T0, False)

    def list(self, path: str) -> list[str]:
        self._record("list", path)
        return []

    def list_info(self, path: str) -> list[FileInfo]:
        self._record("list_info", path)
        return []

    def move(self, source: str, dest: str) -> None:
        self._record("move", source, dest)

    def delete(self, path: str) -> None:
        self._record("delete", path)

    def redirect_url(self, method: str, path: str, *, client_ip: Any = None, expires_in: Any = None) -> Any:
        self._record("redirect_url", method, path, client_ip, expires_in)
        return "http://x/y"

    def walk(self, path: str, fn: Any, start_after_hint: str = "") -> None:
        self._record("walk", path, start_after_hint)
        fn(FileInfo(path + "/child" if path != "/" else "/child", 0, T0, True))

    def bucket_key(self, path: str) -> str | None:
        self._record("bucket_key", path)
        return "key" + path


@pytest.fixture
def inner() -> Recorder:
    return Recorder()


@pytest.fixture
def checked(inner: Recorder) -> CheckedDriver:
    return CheckedDriver(inner)


CALLS = {
    "get_content": lambda d, p: d.get_content(p),
    "put_content": lambda d, p: d.put_content(p, b"x"),
    "reader": lambda d, p: d.reader(p, 3),
    "read_range": lambda d, p: d.read_range(p, 3, 4),
    "writer": lambda d, p: d.writer(p, True),
    "stat": lambda d, p: d.stat(p),
    "list": lambda d, p: d.list(p),
    "list_info": lambda d, p: d.list_info(p),
    "move": lambda d, p: d.move(p, "/dst"),
    "delete": lambda d, p: d.delete(p),
    "redirect_url": lambda d, p: d.redirect_url("GET", p),
    "walk": lambda d, p: d.walk(p, lambda info: None, "/hint"),
    "bucket_key": lambda d, p: d.bucket_key(p),
}
ROOT_OK = {"stat", "list", "list_info", "walk", "bucket_key"}


@pytest.mark.parametrize(
    "path,ok",
    [
        ("/a", True),
        ("/a/b.c/d-e/f_g", True),
        ("/...", True),
        ("/.a", True),
        ("/a.", True),
        ("", False),
        ("/", False),
        ("a", False),
        ("/a/", False),
        ("//a", False),
        ("/a\n", False),
        ("/a\r", False),
        ("/.", False),
        ("/..", False),
        ("/a/./b", False),
        ("/a/../b", False),
        ("/a b", False),
        ("/é", False),
        (None, False),
        (b"/a", False),
    ],
)
def test_is_valid_path(path: Any, ok: bool) -> None:
    assert is_valid_path(path) is ok


def test_root_only_when_allowed() -> None:
    assert is_valid_path("/", allow_root=True)
    assert not is_valid_path("/", allow_root=False)


@pytest.mark.parametrize("call", sorted(CALLS))
def test_invalid_path_never_reaches_inner(checked: CheckedDriver, inner: Recorder, call: str) -> None:
    for path in ["", "/a\n", "/a/../b", "rel"] + ([] if call in ROOT_OK else ["/"]):
        with pytest.raises(InvalidPathError) as exc:
            CALLS[call](checked, path)
        assert exc.value == InvalidPathError(path, "recorder")
        assert str(exc.value) == f"recorder: invalid path: {path}"
    assert inner.calls == []


@pytest.mark.parametrize("call", sorted(CALLS))
def test_valid_path_is_passed_verbatim(checked: CheckedDriver, inner: Recorder, call: str) -> None:
    CALLS[call](checked, "/a/b")
    assert inner.calls[0][0] == call
    assert inner.calls[0][1][0] == "/a/b" or inner.calls[0][1][1] == "/a/b"


@pytest.mark.parametrize("call", sorted(ROOT_OK))
def test_root_allowed(checked: CheckedDriver, inner: Recorder, call: str) -> None:
    CALLS[call](checked, "/")
    assert [c[0] for c in inner.calls] == [call]


def test_arguments_forwarded(checked: CheckedDriver, inner: Recorder) -> None:
    checked.reader("/p", 7)
    checked.read_range("/p", 1, 2)
    checked.writer("/p", True)
    checked.move("/s", "/d")
    checked.redirect_url("HEAD", "/p", client_ip="10.0.0.1", expires_in=60)
    checked.walk("/p", lambda info: None, "/p/h")
    assert inner.calls == [
        ("reader", ("/p", 7)),
        ("read_range", ("/p", 1, 2)),
        ("writer", ("/p", True)),
        ("move", ("/s", "/d")),
        ("redirect_url", ("HEAD", "/p", "10.0.0.1", 60)),
        ("walk", ("/p", "/p/h")),
    ]


@pytest.mark.parametrize("path", ["", "/", "/a\n", "/ok"])
def test_negative_offset_checked_first(checked: CheckedDriver, inner: Recorder, path: str) -> None:
    for call in (lambda: checked.reader(path, -1), lambda: checked.read_range(path, -5, 1)):
        with pytest.raises(InvalidOffsetError) as exc:
            call()
        assert exc.value.path == path and exc.value.offset in (-1, -5)
        assert exc.value.driver_name == "recorder"
    assert inner.calls == []


def test_move_checks_source_first(checked: CheckedDriver, inner: Recorder) -> None:
    with pytest.raises(InvalidPathError) as exc:
        checked.move("/bad\n", "/also/../bad")
    assert exc.value.path == "/bad\n"
    with pytest.raises(InvalidPathError) as exc:
        checked.move("/good", "/also/../bad")
    assert exc.value.path == "/also/../bad"
    assert inner.calls == []


@pytest.mark.parametrize(
    "error",
    [PathNotFoundError("/p"), InvalidPathError("/p"), InvalidOffsetError("/p", -3), UnsupportedMethodError()],
)
def test_driver_errors_are_stamped_not_wrapped(
    checked: CheckedDriver, inner: Recorder, error: Exception
) -> None:
    inner.fail = error
    with pytest.raises(type(error)) as exc:
        checked.stat("/p")
    assert exc.value is error
    assert exc.value.driver_name == "recorder"
    assert str(exc.value).startswith("recorder: ")


def test_stamped_name_is_not_overwritten(checked: CheckedDriver, inner: Recorder) -> None:
    inner.fail = PathNotFoundError("/p", "innermost")
    with pytest.raises(PathNotFoundError) as exc:
        checked.get_content("/p")
    assert exc.value.driver_name == "innermost"


@pytest.mark.parametrize("call", sorted(set(CALLS) - {"bucket_key"}))
def test_other_errors_wrapped_in_driver_error(checked: CheckedDriver, inner: Recorder, call: str) -> None:
    original = OSError("connection reset")
    inner.fail = original
    with pytest.raises(DriverError) as exc:
        CALLS[call](checked, "/p")
    assert exc.value.detail is original
    assert exc.value.__cause__ is original
    assert str(exc.value) == "recorder: connection reset"


@pytest.mark.parametrize("signal", [SkipDir, FilledBuffer])
def test_walk_signals_pass_through(checked: CheckedDriver, signal: type[Exception]) -> None:
    def fn(info: FileInfo) -> None:
        raise signal()

    with pytest.raises(signal):
        checked.walk("/p", fn)


def test_walk_function_error_wrapped(checked: CheckedDriver) -> None:
    def fn(info: FileInfo) -> None:
        raise KeyError("walk fn")

    with pytest.raises(DriverError) as exc:
        checked.walk("/p", fn)
    assert isinstance(exc.value.detail, KeyError)


def test_readers_and_writers_are_raw(checked: CheckedDriver, inner: Recorder) -> None:
    assert checked.reader("/p") is inner.stream
    writer = checked.writer("/p")
    assert writer is inner.file_writer
    with pytest.raises(OSError, match="raw writer error"):  # not wrapped, no driver name
        writer.write(b"x")


def test_results_passed_back(checked: CheckedDriver) -> None:
    assert checked.get_content("/p") == b"data"
    assert checked.read_range("/p", 0, 2) == b"da"
    assert checked.stat("/p") == FileInfo("/p", 1, T0, False)
    assert checked.redirect_url("GET", "/p") == "http://x/y"
    assert checked.bucket_key("/p") == "key/p"
    assert checked.name == "recorder"


def test_name_is_not_validated(checked: CheckedDriver, inner: Recorder) -> None:
    assert checked.name == "recorder"
    assert inner.calls == []
