"""Conformance: content round trips, truncation, reader offsets, missing paths (docs/DRIVERS.md §T1)."""

from __future__ import annotations

import pytest

from s3regfs.driver import InvalidOffsetError, InvalidPathError, PathNotFoundError, StorageDriver
from tests.conformance.suitelib import (
    MiB,
    assert_driver_error,
    delete_path,
    first_part,
    random_contents,
    random_path,
    read_all,
)

VALID_PATHS = [
    "/a",
    "/2",
    "/aa",
    "/a.a",
    "/0-9/abcdefg",
    "/abcdefg/z.75",
    "/abc/1.2.3.4.5-6_zyx/123.z/4",
    "/docker/docker-registry",
    "/123.abc",
    "/abc./abc",
    "/.abc",
    "/a--b",
    "/a-.b",
    "/_.abc",
    "/Docker/docker-registry",
    "/Abc/Cba",
]

INVALID_PATHS = ["", "/", "abc", "123.abc", "//bcd", "/abc_123/"]

CONTENTS = {
    "1": lambda: b"a",
    "2": lambda: b"\xc3\x9f",
    "3": lambda: random_contents(32),
    "4": lambda: random_contents(MiB),
    "nonutf8": lambda: b"\x80\x80\x80\x80",
}


def test_root_exists(driver: StorageDriver) -> None:
    assert isinstance(driver.list("/"), list)


def test_valid_paths(driver: StorageDriver) -> None:
    contents = {path: random_contents(64) for path in VALID_PATHS}
    try:
        for path, data in contents.items():
            driver.put_content(path, data)
        for path, data in contents.items():  # all coexist: case-sensitive, prefix siblings
            assert driver.get_content(path) == data, path
    finally:
        for top in sorted({first_part(p) for p in VALID_PATHS}):
            delete_path(driver, top)


def test_invalid_paths(driver: StorageDriver) -> None:
    for path in INVALID_PATHS:
        with pytest.raises(InvalidPathError) as put:
            driver.put_content(path, random_contents(64))
        assert_driver_error(put.value, InvalidPathError, driver)
        with pytest.raises(InvalidPathError) as get:
            driver.get_content(path)
        assert_driver_error(get.value, InvalidPathError, driver)


def test_write_read(driver: StorageDriver) -> None:
    """TestWriteRead1-4 and TestWriteReadNonUTF8."""
    for kind, make in CONTENTS.items():
        path, data = random_path(32), make()
        driver.put_content(path, data)
        try:
            assert driver.get_content(path) == data, kind
        finally:
            delete_path(driver, first_part(path))


def test_truncate(driver: StorageDriver) -> None:
    path = random_path(32)
    long, short = random_contents(MiB), random_contents(1024)
    try:
        driver.put_content(path, long)
        assert driver.get_content(path) == long
        driver.put_content(path, short)
        assert driver.get_content(path) == short
        assert driver.stat(path).size == 1024
    finally:
        delete_path(driver, first_part(path))


def test_put_content_multiple_times(driver: StorageDriver) -> None:
    path = random_path(32)
    try:
        driver.put_content(path, random_contents(4096))
        second = random_contents(2048)
        driver.put_content(path, second)
        assert driver.get_content(path) == second
    finally:
        delete_path(driver, first_part(path))


def test_read_nonexistent(driver: StorageDriver) -> None:
    path = random_path(32)
    with pytest.raises(PathNotFoundError) as exc:
        driver.get_content(path)
    assert_driver_error(exc.value, PathNotFoundError, driver)
    assert exc.value.path == path


def test_read_nonexistent_stream(driver: StorageDriver) -> None:
    for offset in (0, 64):
        with pytest.raises(PathNotFoundError) as exc:
            driver.reader(random_path(32), offset)
        assert_driver_error(exc.value, PathNotFoundError, driver)


def test_reader_with_offset(driver: StorageDriver) -> None:
    path = random_path(32)
    chunks = [random_contents(32) for _ in range(3)]
    data = b"".join(chunks)
    assert len(set(chunks)) == 3
    driver.put_content(path, data)
    try:
        assert read_all(driver.reader(path, 0)) == data
        assert read_all(driver.reader(path, 32)) == chunks[1] + chunks[2]
        assert read_all(driver.reader(path, 64)) == chunks[2]

        with pytest.raises(InvalidOffsetError) as exc:
            driver.reader(path, -1)
        assert_driver_error(exc.value, InvalidOffsetError, driver)
        assert (exc.value.offset, exc.value.path) == (-1, path)

        at_end = driver.reader(path, 96)
        assert at_end.read(4096) == b""
        at_end.close()

        last = driver.reader(path, 95)
        assert read_all(last, 4096) == data[95:]

        stream, got = driver.reader(path, 10), b""  # read(n) never returns more than n
        while chunk := stream.read(7):
            assert 0 < len(chunk) <= 7
            got += chunk
        stream.close()
        assert got == data[10:]
    finally:
        delete_path(driver, first_part(path))


def test_reader_offset_beyond_size(driver: StorageDriver) -> None:
    """§T2: an offset past the end is not an error; the stream is empty."""
    path = random_path(32)
    driver.put_content(path, random_contents(96))
    try:
        for offset in (97, 1000, 10 * MiB):
            stream = driver.reader(path, offset)
            assert stream.read(4096) == b"", offset
            assert stream.read() == b"", offset
            stream.close()
    finally:
        delete_path(driver, first_part(path))


def test_reader_on_empty_file(driver: StorageDriver) -> None:
    path = random_path(32)
    driver.put_content(path, b"")
    try:
        assert read_all(driver.reader(path, 0)) == b""
        assert driver.get_content(path) == b""
        assert driver.stat(path).size == 0
    finally:
        delete_path(driver, first_part(path))
