"""Conformance: the FileWriter (docs/DRIVERS.md §T1; §T2 append, cancel and visibility additions)."""

from __future__ import annotations

from typing import Callable

import pytest

from s3regfs.driver import (
    DriverError,
    FileWriter,
    PathNotFoundError,
    StorageDriver,
    WriterStateError,
)
from tests.conformance.suitelib import (
    MiB,
    assert_driver_error,
    delete_path,
    first_part,
    random_contents,
    random_path,
    read_all,
    write_all,
)

CONTENTS = {
    "1": lambda: b"a",
    "2": lambda: b"\xc3\x9f",
    "3": lambda: random_contents(32),
    "4": lambda: random_contents(MiB),
    "nonutf8": lambda: b"\x80\x80\x80\x80",
}


def test_write_read_streams(driver: StorageDriver) -> None:
    """TestWriteReadStreams1-4 and TestWriteReadStreamsNonUTF8."""
    for kind, make in CONTENTS.items():
        path, data = random_path(32), make()
        try:
            writer = driver.writer(path, False)
            assert write_all(writer, data) == len(data), kind
            writer.commit()
            writer.close()
            assert writer.size() == len(data), kind
            assert read_all(driver.reader(path, 0)) == data, kind
        finally:
            delete_path(driver, first_part(path))


def _continue_stream_append(driver: StorageDriver, chunk: int) -> None:
    """Upstream testContinueStreamAppend with three distinct chunks."""
    path = random_path(32)
    chunks = [random_contents(chunk) for _ in range(3)]
    try:
        writer = driver.writer(path, False)
        assert write_all(writer, chunks[0]) == chunk
        writer.close()
        assert writer.size() == chunk

        writer = driver.writer(path, True)
        assert writer.size() == chunk
        assert write_all(writer, chunks[1]) == chunk
        writer.close()
        assert writer.size() == 2 * chunk

        writer = driver.writer(path, True)
        assert writer.size() == 2 * chunk
        assert write_all(writer, chunks[2]) == chunk
        writer.commit()
        writer.close()
        assert writer.size() == 3 * chunk

        assert driver.get_content(path) == b"".join(chunks)
    finally:
        delete_path(driver, first_part(path))


def test_continue_stream_append_large(driver: StorageDriver) -> None:
    _continue_stream_append(driver, 10 * MiB)


def test_continue_stream_append_small(driver: StorageDriver) -> None:
    _continue_stream_append(driver, 32)


@pytest.mark.parametrize(
    "sizes",
    [
        pytest.param((1000, 3000, 17), id="total-below-5MiB"),
        pytest.param((3 * MiB, 3 * MiB + 1, 3 * MiB - 1), id="total-above-5MiB"),
    ],
)
def test_append_chain_small_parts(driver: StorageDriver, sizes: tuple[int, ...]) -> None:
    """§T2: Close-then-append with parts below 5 MiB: content, Size after Close and after re-open."""
    path = random_path(32)
    chunks = [random_contents(n) for n in sizes]
    total = 0
    try:
        for i, data in enumerate(chunks):
            writer = driver.writer(path, i > 0)
            assert writer.size() == total, f"size after re-open #{i}"
            assert write_all(writer, data, chunk=64 * 1024) == len(data)
            total += len(data)
            if i == len(chunks) - 1:
                writer.commit()
            writer.close()
            assert writer.size() == total, f"size after close #{i}"
        assert driver.get_content(path) == b"".join(chunks)
        assert driver.stat(path).size == total
    finally:
        delete_path(driver, first_part(path))


def _zero_then_append(driver: StorageDriver, make_empty: Callable[[str], None]) -> None:
    path = random_path(32)
    try:
        make_empty(path)
        stream = driver.reader(path, 0)
        assert stream.read(4096) == b""
        stream.close()
        info = driver.stat(path)
        assert (info.size, info.is_dir) == (0, False)

        data = random_contents(32)
        writer = driver.writer(path, True)
        assert write_all(writer, data) == 32
        writer.commit()
        writer.close()
        assert writer.size() == 32
        assert read_all(driver.reader(path, 0)) == data
    finally:
        delete_path(driver, first_part(path))


def test_write_zero_byte_stream_then_append(driver: StorageDriver) -> None:
    def empty_writer(path: str) -> None:
        writer = driver.writer(path, False)
        writer.commit()
        writer.close()
        assert writer.size() == 0

    _zero_then_append(driver, empty_writer)


def test_write_zero_byte_content_then_append(driver: StorageDriver) -> None:
    _zero_then_append(driver, lambda path: driver.put_content(path, b""))


def test_append_to_missing_path(driver: StorageDriver) -> None:
    """§T2: append=True with nothing to resume is PathNotFoundError (the s3 contract)."""
    path = random_path(32)
    with pytest.raises(PathNotFoundError) as exc:
        driver.writer(path, True)
    assert_driver_error(exc.value, PathNotFoundError, driver)
    with pytest.raises(PathNotFoundError):
        driver.stat(path)


def test_append_to_committed_content(driver: StorageDriver) -> None:
    """Appending onto non-empty committed content is refused (v3 s3) and leaves it intact."""
    path = random_path(32)
    data = random_contents(64)
    driver.put_content(path, data)
    try:
        with pytest.raises(DriverError) as exc:
            driver.writer(path, True)
        assert_driver_error(exc.value, DriverError, driver)
        assert driver.get_content(path) == data
    finally:
        delete_path(driver, first_part(path))


def test_uncommitted_write_is_invisible(driver: StorageDriver) -> None:
    """Until Commit nothing is at the path; a resumed writer then commits the bytes."""
    path = random_path(32)
    data = random_contents(4096)
    writer = driver.writer(path, False)
    write_all(writer, data)
    writer.close()
    with pytest.raises(PathNotFoundError):
        driver.stat(path)
    with pytest.raises(PathNotFoundError):
        driver.get_content(path)
    assert driver.list("/") == []

    writer = driver.writer(path, True)
    assert writer.size() == len(data)
    writer.commit()
    writer.close()
    try:
        assert driver.get_content(path) == data
    finally:
        delete_path(driver, first_part(path))


def test_cancel_new_file(driver: StorageDriver) -> None:
    """§T2: a cancelled write leaves nothing visible, and cannot be resumed."""
    path = random_path(32)
    writer = driver.writer(path, False)
    write_all(writer, random_contents(4096))
    writer.cancel()
    with pytest.raises(PathNotFoundError):
        driver.stat(path)
    with pytest.raises(PathNotFoundError):
        driver.writer(path, True)
    assert driver.list("/") == []


def test_cancel_keeps_committed_content(driver: StorageDriver) -> None:
    """Cancel abandons only the new write: content committed earlier stays."""
    path = random_path(32)
    old = random_contents(100)
    driver.put_content(path, old)
    try:
        writer = driver.writer(path, False)
        write_all(writer, random_contents(200))
        writer.cancel()
        assert driver.get_content(path) == old
    finally:
        delete_path(driver, first_part(path))


def test_overwrite_visible_only_at_commit(driver: StorageDriver) -> None:
    path = random_path(32)
    old, new = random_contents(100), random_contents(300)
    driver.put_content(path, old)
    try:
        writer = driver.writer(path, False)
        write_all(writer, new)
        assert driver.get_content(path) == old
        writer.commit()
        writer.close()
        assert driver.get_content(path) == new
    finally:
        delete_path(driver, first_part(path))


def _finished(driver: StorageDriver, how: str) -> tuple[FileWriter, str]:
    path = random_path(32)
    writer = driver.writer(path, False)
    writer.write(b"abc")
    getattr(writer, how)()
    return writer, path


STATE_ERRORS = [
    # (first call, second call, expected error text or None for success)
    ("close", "write", "already closed"),
    ("commit", "write", "already committed"),
    ("cancel", "write", "already cancelled"),
    ("close", "commit", "already closed"),
    ("commit", "commit", "already committed"),
    ("cancel", "commit", "already cancelled"),
    ("close", "close", "already closed"),
    ("commit", "close", None),
    ("close", "cancel", "already closed"),
    ("commit", "cancel", "already committed"),
    ("cancel", "cancel", "already cancelled"),
]


def test_writer_state_machine(driver: StorageDriver) -> None:
    """§C3: the v3 s3 column of the state table (inmemory follows it)."""
    for first, second, expected in STATE_ERRORS:
        label = f"{second} after {first}"
        writer, path = _finished(driver, first)
        try:
            call = (lambda w=writer: w.write(b"more")) if second == "write" else getattr(writer, second)
            if expected is None:
                call()
            else:
                with pytest.raises(WriterStateError, match=expected):
                    call()
            if first == "commit":
                assert driver.get_content(path) == b"abc", label
            else:
                with pytest.raises(PathNotFoundError):
                    driver.stat(path)
        finally:
            if first == "close":  # the upload is still open: resume it and abandon it
                driver.writer(path, True).cancel()
            elif first == "commit":
                delete_path(driver, first_part(path))
