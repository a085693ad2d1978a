"""Conformance: object versions (s3regfs extension): ``FileInfo.etag`` and ``read_range(..., etag=)``.

Every driver chain names the version of a file in its ``FileInfo`` (``stat``, ``list_info`` and
``walk`` agree), the name changes when the content is replaced with other bytes, and a
``read_range`` pinned to a version raises :class:`ObjectChangedError` once the path holds another
one (S3: ``If-Match``, HTTP 412), so a reader never gets bytes of two versions.
"""

from __future__ import annotations

import posixpath

import pytest

from s3regfs.driver import ObjectChangedError, PathNotFoundError, StorageDriver
from tests.conformance.suitelib import (
    assert_driver_error,
    delete_path,
    first_part,
    random_contents,
    random_path,
    write_all,
)


def _walked(driver: StorageDriver, root: str) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    driver.walk(root, lambda info: found.__setitem__(info.path, info.etag) if not info.is_dir else None)
    return found


def test_file_info_names_the_version_everywhere(driver: StorageDriver) -> None:
    path = "/ver/dir/file"
    driver.put_content(path, random_contents(100))
    try:
        etag = driver.stat(path).etag
        assert etag
        assert [i.etag for i in driver.list_info("/ver/dir")] == [etag]
        assert _walked(driver, "/ver") == {path: etag}
        assert driver.stat("/ver").etag is None  # directories have no version
        driver.put_content(path, random_contents(100))  # other bytes, same size
        new = driver.stat(path).etag
        assert new and new != etag
        assert [i.etag for i in driver.list_info("/ver/dir")] == [new]
    finally:
        delete_path(driver, "/ver")


@pytest.mark.parametrize("size", [0, 100, 16 * 1024 * 1024 + 17])  # the last: two parts of s3
def test_a_write_returns_the_version_it_made(driver: StorageDriver, size: int) -> None:
    """Extension 8: ``put_content`` and ``commit`` name the version a ``stat`` right after shows
    (one part, several parts, and empty), so a filesystem reading back its own write needs no ``stat``."""
    path = "/written" + random_path(24)
    try:
        put = driver.put_content(path, random_contents(size))
        assert put is not None and put == driver.stat(path).etag
        writer = driver.writer(path)
        write_all(writer, random_contents(size))
        committed = writer.commit()
        writer.close()
        info = driver.stat(path)
        assert committed is not None and (info.size, info.etag) == (size, committed)
        assert size == 0 or committed != put  # other bytes: another version
        assert [i.etag for i in driver.list_info(posixpath.dirname(path)) if i.path == path] == [committed]
        assert _walked(driver, first_part(path))[path] == committed
    finally:
        delete_path(driver, first_part(path))


def test_read_range_pinned_to_a_version(driver: StorageDriver) -> None:
    path, old, new = random_path(32), random_contents(1000), random_contents(1000)
    driver.put_content(path, old)
    try:
        etag = driver.stat(path).etag
        assert driver.read_range(path, 10, 20, etag=etag) == old[10:30]
        assert driver.read_range(path, 990, 100, etag=etag) == old[990:]
        driver.put_content(path, new)
        for offset, length in ((10, 20), (0, 1000), (990, 100)):
            with pytest.raises(ObjectChangedError) as exc:
                driver.read_range(path, offset, length, etag=etag)
            assert_driver_error(exc.value, ObjectChangedError, driver)
            assert path in str(exc.value)
        assert driver.read_range(path, 10, 20) == new[10:30]  # unpinned: whatever is there now
        assert driver.read_range(path, 10, 20, etag=driver.stat(path).etag) == new[10:30]
    finally:
        delete_path(driver, first_part(path))


def test_read_range_pinned_to_a_version_of_a_missing_file(driver: StorageDriver) -> None:
    path = random_path(32)
    driver.put_content(path, b"x" * 10)
    etag = driver.stat(path).etag
    delete_path(driver, first_part(path))
    with pytest.raises((PathNotFoundError, ObjectChangedError)) as exc:
        driver.read_range(path, 0, 10, etag=etag)
    assert driver.name in str(exc.value)
