"""Conformance: redirect_url (docs/DRIVERS.md §T1) and the s3regfs extensions read_range, list_info, bucket_key,
stat_tree."""

from __future__ import annotations

import urllib.request

import pytest

from s3regfs.driver import PathNotFoundError, StorageDriver
from s3regfs.driver.base import FirstFiles
from tests.conformance.suitelib import (
    DriverCase,
    assert_driver_error,
    delete_path,
    first_part,
    put_all,
    random_contents,
    random_path,
    read_all,
)


def test_redirect_url(driver_case: DriverCase) -> None:
    """A returned URL serves the bytes (GET) and answers HEAD with 200 and Content-Length 32."""
    driver = driver_case.driver
    path, data = random_path(32), random_contents(32)
    driver.put_content(path, data)
    try:
        get_url = driver.redirect_url("GET", path)
        head_url = driver.redirect_url("HEAD", path)
        if driver_case.family == "fallback":  # inmemory cannot redirect
            assert (get_url, head_url) == (None, None)
            return
        assert get_url and head_url
        if driver_case.redirect_base:
            assert get_url.startswith(driver_case.redirect_base)
        with urllib.request.urlopen(get_url, timeout=10) as response:
            assert response.status == 200
            assert response.read() == data
        request = urllib.request.Request(head_url, method="HEAD")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
            assert response.headers["Content-Length"] == "32"
    finally:
        delete_path(driver, first_part(path))


def test_redirect_url_other_methods(driver_case: DriverCase) -> None:
    """Only GET and HEAD redirect: any other method means "serve it yourself" (None).

    Except through cloudfront, which (as upstream) signs a URL whatever the method.
    """
    driver = driver_case.driver
    path = random_path(32)
    driver.put_content(path, random_contents(32))
    try:
        for method in ("PUT", "POST", "DELETE"):
            url = driver.redirect_url(method, path)
            if driver_case.redirect_base:
                assert url is not None and url.startswith(driver_case.redirect_base), method
            else:
                assert url is None, method
    finally:
        delete_path(driver, first_part(path))


RANGES = [(0, 1000), (0, 10), (10, 0), (500, 1), (990, 10), (999, 10), (0, 5000), (1000, 5), (5000, 5)]


def test_read_range_agrees_with_reader(driver: StorageDriver) -> None:
    path, data = random_path(32), random_contents(1000)
    driver.put_content(path, data)
    try:
        for offset, length in RANGES:
            expected = read_all(driver.reader(path, offset))[:length]
            assert expected == data[offset : offset + length]
            assert driver.read_range(path, offset, length) == expected, (offset, length)
    finally:
        delete_path(driver, first_part(path))


def test_read_range_of_empty_and_missing_files(driver: StorageDriver) -> None:
    path = random_path(32)
    driver.put_content(path, b"")
    try:
        assert driver.read_range(path, 0, 10) == b""
        assert driver.read_range(path, 5, 10) == b""
        missing = path + "x"
        with pytest.raises(PathNotFoundError) as exc:
            driver.read_range(missing, 0, 10)
        assert_driver_error(exc.value, PathNotFoundError, driver)
    finally:
        delete_path(driver, first_part(path))


LIST_TREE = ["/li/a", "/li/b-1", "/li/b.2", "/li/c/d", "/li/c/e/f", "/li/cc", "/li/z/y"]


def test_list_info_agrees_with_list_and_stat(driver: StorageDriver) -> None:
    put_all(driver, LIST_TREE)
    try:
        for directory in ["/", "/li", "/li/c", "/li/c/e", "/li/z"]:
            infos = driver.list_info(directory)
            assert sorted(i.path for i in infos) == sorted(driver.list(directory)), directory
            for info in infos:
                stat = driver.stat(info.path)
                assert (info.path, info.size, info.is_dir) == (stat.path, stat.size, stat.is_dir)
                assert info.mod_time.replace(microsecond=0) == stat.mod_time.replace(microsecond=0), info
                if not info.is_dir:
                    assert info.size == len(info.path)
        for bad in ["/li/missing", "/li/a"]:  # a missing path, a file
            with pytest.raises(PathNotFoundError) as exc:
                driver.list_info(bad)
            assert_driver_error(exc.value, PathNotFoundError, driver)
    finally:
        delete_path(driver, "/li")


def test_bucket_key(driver_case: DriverCase) -> None:
    """s3 chains: the object key under the rootdirectory, where the bytes really are; inmemory: None."""
    driver = driver_case.driver
    path, data = "/bk/dir/file-1.x", random_contents(48)
    driver.put_content(path, data)
    try:
        key = driver.bucket_key(path)
        if driver_case.client is None:
            assert key is None
            return
        root = driver_case.root.strip("/")
        assert key == (f"{root}/bk/dir/file-1.x" if root else "bk/dir/file-1.x")
        obj = driver_case.client.get_object(Bucket=driver_case.bucket, Key=key)
        assert obj["Body"].read() == data
        listed = driver_case.client.list_objects_v2(Bucket=driver_case.bucket)
        assert [o["Key"] for o in listed.get("Contents", [])] == [key]
    finally:
        delete_path(driver, "/bk")


def test_stat_tree_agrees_with_stat_and_walk(driver: StorageDriver) -> None:
    """Extension 7: stat_tree is stat, plus the complete list of files below a small directory.

    A file wins over keys below its name (as in stat); siblings sharing the name's prefix are no part
    of it; a directory with more files than the limit gives its first files in key order, or nothing; a
    missing name is not found.
    """
    root = "/" + random_path(12).strip("/").split("/")[0] + "tree"
    files = [f"{root}/d/a", f"{root}/d/b/c", f"{root}/d/b/e/f", f"{root}/d-1", f"{root}/d.x", f"{root}/d0",
             f"{root}/f", f"{root}/f/under", f"{root}/big/1", f"{root}/big/2", f"{root}/big/3"]
    put_all(driver, files)
    try:
        info, below = driver.stat_tree(f"{root}/d", 8)
        assert info == driver.stat(f"{root}/d") and info.is_dir
        assert below is not None  # inmemory and s3 answer it (a driver with only the default gives None)
        walked: list[str] = []
        driver.walk(f"{root}/d", lambda i: walked.append(i.path) if not i.is_dir else None)
        assert sorted(i.path for i in below) == sorted(walked) == [f"{root}/d/a", f"{root}/d/b/c", f"{root}/d/b/e/f"]
        for entry in below:
            assert entry == driver.stat(entry.path)
        info, below = driver.stat_tree(f"{root}/f", 8)
        assert info == driver.stat(f"{root}/f") and not info.is_dir and below is None
        info, below = driver.stat_tree(f"{root}/d/a", 8)
        assert info == driver.stat(f"{root}/d/a") and below is None
        info, below = driver.stat_tree(f"{root}/big", 2)
        assert info == driver.stat(f"{root}/big")
        # past the limit: the first files in key order (inmemory, s3), or nothing (the default)
        first = [i.path for i in below][:2] if isinstance(below, FirstFiles) else None
        assert below is None or first == [f"{root}/big/1", f"{root}/big/2"]
        with pytest.raises(PathNotFoundError):
            driver.stat_tree(f"{root}/d-", 8)
        with pytest.raises(PathNotFoundError):
            driver.stat_tree(f"{root}/missing", 8)
    finally:
        delete_path(driver, root)


def test_stat_tree_past_siblings_that_fill_the_answer(driver: StorageDriver) -> None:
    """Siblings sorting before ``name/`` (``name-1`` …) that fill the limit still give the right answer."""
    root = "/" + random_path(12).strip("/").split("/")[0] + "sib"
    put_all(driver, [f"{root}/n-{i}" for i in range(6)] + [f"{root}/n/x"] + [f"{root}/m-{i}" for i in range(6)])
    try:
        info, below = driver.stat_tree(f"{root}/n", 3)
        assert info.is_dir and info == driver.stat(f"{root}/n")
        assert below is None or [i.path for i in below] == [f"{root}/n/x"]  # None: past the limit in byte order
        with pytest.raises(PathNotFoundError):
            driver.stat_tree(f"{root}/m", 3)
    finally:
        delete_path(driver, root)
