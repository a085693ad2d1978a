"""Conformance: list, move, delete and stat (docs/DRIVERS.md §T1; s3 TestDelete/TestListObjectsV2; §T2)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from s3regfs.driver import InvalidPathError, PathNotFoundError, StorageDriver, StorageDriverError
from tests.conformance.suitelib import (
    assert_driver_error,
    delete_path,
    first_part,
    poll,
    put_all,
    random_contents,
    random_filename,
    random_name_between,
    random_path,
    walk_paths,
)

# -- list ---------------------------------------------------------------------------------


def test_list(driver: StorageDriver) -> None:
    root = "/" + random_name_between(8, 15)
    missing = root + "/nonexistent"
    with pytest.raises(PathNotFoundError) as exc:
        driver.list(missing)
    assert exc.value == PathNotFoundError(missing, driver.name)

    parent = root + "/" + random_name_between(8, 15)
    children = set()
    while len(children) < 50:
        children.add(parent + "/" + random_name_between(8, 15))
    try:
        for child in children:
            driver.put_content(child, random_contents(32))
        assert driver.list("/") == [root]
        assert driver.list(root) == [parent]
        assert sorted(driver.list(parent)) == sorted(children)
    finally:
        delete_path(driver, root)


def test_list_root_of_empty_store(driver: StorageDriver) -> None:
    assert driver.list("/") == []


def test_list_of_a_file_fails(driver: StorageDriver) -> None:
    path = random_path(32)
    driver.put_content(path, random_contents(8))
    try:
        with pytest.raises(PathNotFoundError) as exc:
            driver.list(path)
        assert_driver_error(exc.value, PathNotFoundError, driver)
    finally:
        delete_path(driver, first_part(path))


def test_list_files_and_dirs(driver: StorageDriver) -> None:
    """Direct children only, absolute, no trailing slash; names sharing a prefix stay apart."""
    put_all(driver, ["/l/a", "/l/a-b", "/l/a.b/x", "/l/ab/x/y", "/l/b"])
    try:
        assert sorted(driver.list("/l")) == ["/l/a", "/l/a-b", "/l/a.b", "/l/ab", "/l/b"]
        assert driver.list("/l/ab") == ["/l/ab/x"]
        assert driver.list("/l/ab/x") == ["/l/ab/x/y"]
    finally:
        delete_path(driver, "/l")


def test_file_and_directory_may_share_a_name(driver: StorageDriver) -> None:
    """As on S3, key ``/s/a`` and keys under ``/s/a/`` coexist: both stay readable, stat sees the file."""
    put_all(driver, ["/s/a", "/s/a/x"])
    try:
        assert set(driver.list("/s")) == {"/s/a"}
        assert driver.list("/s/a") == ["/s/a/x"]
        assert driver.get_content("/s/a") == b"/s/a"
        assert driver.get_content("/s/a/x") == b"/s/a/x"
        info = driver.stat("/s/a")
        assert (info.is_dir, info.size) == (False, 4)
    finally:
        delete_path(driver, "/s")


# -- move ---------------------------------------------------------------------------------


def test_move(driver: StorageDriver) -> None:
    src, dst = random_path(32), random_path(32)
    data = random_contents(32)
    driver.put_content(src, data)
    try:
        driver.move(src, dst)
        assert driver.get_content(dst) == data
        with pytest.raises(PathNotFoundError) as exc:
            driver.get_content(src)
        assert_driver_error(exc.value, PathNotFoundError, driver)
    finally:
        delete_path(driver, first_part(src))
        delete_path(driver, first_part(dst))


def test_move_overwrite(driver: StorageDriver) -> None:
    src, dst = random_path(32), random_path(32)
    data = random_contents(32)
    driver.put_content(src, data)
    driver.put_content(dst, random_contents(64))
    try:
        driver.move(src, dst)
        assert driver.get_content(dst) == data
        with pytest.raises(PathNotFoundError) as exc:
            driver.get_content(src)
        assert_driver_error(exc.value, PathNotFoundError, driver)
    finally:
        delete_path(driver, first_part(src))
        delete_path(driver, first_part(dst))


def test_move_nonexistent(driver: StorageDriver) -> None:
    src, dst = random_path(32), random_path(32)
    data = random_contents(32)
    driver.put_content(dst, data)
    try:
        with pytest.raises(PathNotFoundError) as exc:
            driver.move(src, dst)
        assert_driver_error(exc.value, PathNotFoundError, driver)
        assert exc.value.path == src  # (upstream inmemory wrongly names the destination)
        assert driver.get_content(dst) == data
    finally:
        delete_path(driver, first_part(dst))


def test_move_onto_itself_keeps_the_content(driver: StorageDriver) -> None:
    """Move(p, p) is a no-op (upstream s3 fails on the in-place copy; both drivers here agree)."""
    path, data = random_path(32), random_contents(32)
    driver.put_content(path, data)
    try:
        driver.move(path, path)
        assert driver.get_content(path) == data
    finally:
        delete_path(driver, first_part(path))


def test_move_invalid(driver: StorageDriver) -> None:
    driver.put_content("/notadir", random_contents(32))
    try:
        with pytest.raises(StorageDriverError) as exc:  # upstream: any error; through checked, a driver error
            driver.move("/notadir/foo", "/notadir/bar")
        assert driver.name in str(exc.value)
        assert driver.list("/") == ["/notadir"]
    finally:
        delete_path(driver, "/notadir")


# -- delete -------------------------------------------------------------------------------


def test_delete(driver: StorageDriver) -> None:
    path = random_path(32)
    driver.put_content(path, random_contents(32))
    driver.delete(first_part(path))
    with pytest.raises(PathNotFoundError) as exc:
        driver.get_content(path)
    assert_driver_error(exc.value, PathNotFoundError, driver)


def test_delete_nonexistent(driver: StorageDriver) -> None:
    path = random_path(32)
    with pytest.raises(PathNotFoundError) as exc:
        driver.delete(path)
    assert_driver_error(exc.value, PathNotFoundError, driver)


def test_delete_folder(driver: StorageDriver) -> None:
    folder = random_path(32)
    files = [folder + random_path(32) for _ in range(3)]
    for path in files:
        driver.put_content(path, random_contents(32))
    try:
        driver.delete(files[0])
        with pytest.raises(PathNotFoundError):
            driver.get_content(files[0])
        for path in files[1:]:
            assert len(driver.get_content(path)) == 32
        driver.delete(folder)
        for path in files:
            with pytest.raises(PathNotFoundError) as exc:
                driver.get_content(path)
            assert_driver_error(exc.value, PathNotFoundError, driver)
    finally:
        delete_path(driver, first_part(folder))


def test_delete_only_deletes_subpaths(driver: StorageDriver) -> None:
    d, f = random_path(32), random_filename(32)
    paths = [f"{d}/{f}", f"{d}/{f}suffix", f"{d}/{d[1:]}/{f}", f"{d}/{d[1:]}suffix/{f}"]
    put_all(driver, paths)
    try:
        driver.delete(paths[0])
        with pytest.raises(PathNotFoundError):
            driver.get_content(paths[0])
        assert driver.get_content(paths[1]) == paths[1].encode()

        driver.delete(f"{d}/{d[1:]}")
        with pytest.raises(PathNotFoundError):
            driver.get_content(paths[2])
        assert driver.get_content(paths[3]) == paths[3].encode()
    finally:
        delete_path(driver, first_part(d))


def test_delete_of_a_mere_prefix_is_not_found(driver: StorageDriver) -> None:
    """Delete("/q/a") when only "/q/ab" exists: PathNotFoundError, and "/q/ab" stays (v3 s3 returned nil)."""
    put_all(driver, ["/q/ab"])
    try:
        with pytest.raises(PathNotFoundError) as exc:
            driver.delete("/q/a")
        assert_driver_error(exc.value, PathNotFoundError, driver)
        assert driver.get_content("/q/ab") == b"/q/ab"
    finally:
        delete_path(driver, "/q")


def test_deleted_directory_is_gone(driver: StorageDriver) -> None:
    """After Delete("/d") neither /d nor anything that was under it can be stat'ed or listed."""
    put_all(driver, ["/d/e/f", "/d/e/g/h", "/d/i"])
    driver.delete("/d")
    for path in ["/d", "/d/e", "/d/e/g", "/d/i", "/d/e/f"]:
        for call in (driver.stat, driver.list, driver.list_info):
            with pytest.raises(PathNotFoundError) as exc:
                call(path)
            assert_driver_error(exc.value, PathNotFoundError, driver)
    assert walk_paths(driver, "/") == []
    assert driver.list("/") == []


def test_delete_leaves_prefix_siblings(driver: StorageDriver) -> None:
    """§T2: Delete("/p/a") leaves "/p/a-b/x" and "/p/a.b/x" (sorting before '/') and "/p/ab"."""
    siblings = ["/p/a-b/x", "/p/a.b/x", "/p/ab"]
    put_all(driver, ["/p/a", "/p/a/x", "/p/a/y/z", *siblings])
    try:
        driver.delete("/p/a")
        for path in ["/p/a", "/p/a/x", "/p/a/y/z"]:
            with pytest.raises(PathNotFoundError):
                driver.get_content(path)
        for path in siblings:
            assert driver.get_content(path) == path.encode()
        assert sorted(driver.list("/p")) == ["/p/a-b", "/p/a.b", "/p/ab"]
        assert sorted(walk_paths(driver, "/p")) == ["/p/a-b", "/p/a-b/x", "/p/a.b", "/p/a.b/x", "/p/ab"]
    finally:
        delete_path(driver, "/p")


DELETE_OBJECTS = [
    "/file1",
    "/file1-2",
    "/folder1/file1",
    "/folder2/file1",
    "/folder3/file1",
    "/folder3/subfolder1/subfolder1/file1",
    "/folder3/subfolder2/subfolder1/file1",
    "/folder4/file1",
    "/folder1-v2/file1",
    "/folder1-v2/subfolder1/file1",
]

DELETE_CASES: list[tuple[str, type[Exception] | None, list[str]]] = [
    ("/folder1", None, ["/folder1/file1"]),
    ("/folder2", None, ["/folder2/file1"]),
    (
        "/folder3",
        None,
        ["/folder3/file1", "/folder3/subfolder1/subfolder1/file1", "/folder3/subfolder2/subfolder1/file1"],
    ),
    ("/path/does/not/exist", PathNotFoundError, []),
    ("/path/is/invalid/", InvalidPathError, []),
    ("/path/is/invalid*", InvalidPathError, []),
] + [(obj, None, [obj]) for obj in DELETE_OBJECTS]


def _gone(driver: StorageDriver) -> set[str]:
    """The objects that are no longer files (a path that now reports a directory is ignored)."""
    gone = set()
    for obj in DELETE_OBJECTS:
        try:
            driver.stat(obj)
        except PathNotFoundError:
            gone.add(obj)
    return gone


def test_delete_table(driver: StorageDriver) -> None:
    """The v3 s3 TestDelete table, for every driver: exactly the expected objects go."""
    put_all(driver, DELETE_OBJECTS)
    try:
        for path, error, expected in DELETE_CASES:
            if error is None:
                driver.delete(path)
            else:
                with pytest.raises(error) as exc:
                    driver.delete(path)
                assert_driver_error(exc.value, error, driver)
            assert _gone(driver) == set(expected), f"delete({path})"
            put_all(driver, expected)
    finally:
        for top in sorted({first_part(p) for p in DELETE_OBJECTS}):
            delete_path(driver, top)


def test_list_objects_v2(driver: StorageDriver) -> None:
    """The v3 s3 TestListObjectsV2, generic part: list, stat, walk and delete of a prefix."""
    prefix = "/test-list-objects-v2"
    files = [f"{prefix}/{i}" for i in range(6)]
    put_all(driver, files)
    try:
        info = driver.stat(files[0])
        assert (info.is_dir, info.size) == (False, len(files[0]))
        sub_file = f"{prefix}/sub/0"
        put_all(driver, [sub_file])
        assert sorted(driver.list(prefix)) == sorted(files + [f"{prefix}/sub"])
        seen = {}
        driver.walk(prefix, lambda fi: seen.setdefault(fi.path, fi))
        assert set(seen) == set(files + [f"{prefix}/sub", sub_file])
        for path, fi in seen.items():
            if path == f"{prefix}/sub":
                assert fi.is_dir
            else:
                assert (fi.is_dir, fi.size) == (False, len(path))
        driver.delete(prefix)
    finally:
        delete_path(driver, prefix)


# -- stat ---------------------------------------------------------------------------------


def test_stat_call(driver: StorageDriver) -> None:
    dir_path = random_path(32)
    file_path = dir_path + random_path(32)
    for missing in (dir_path, file_path):
        with pytest.raises(PathNotFoundError) as exc:
            driver.stat(missing)
        assert_driver_error(exc.value, PathNotFoundError, driver)
    try:
        driver.put_content(file_path, random_contents(4096))
        first = driver.stat(file_path)
        assert (first.path, first.size, first.is_dir) == (file_path, 4096, False)
        age = datetime.now(timezone.utc) - first.mod_time  # aware, and about now
        assert abs(age.total_seconds()) < 300, first.mod_time

        latest = [first]

        def reput_is_later() -> bool:
            driver.put_content(file_path, random_contents(4096))
            latest[0] = driver.stat(file_path)
            return latest[0].mod_time > first.mod_time

        assert poll(reput_is_later, timeout=5.0, interval=0.1), (first.mod_time, latest[0].mod_time)
        assert latest[0].size == 4096

        info = driver.stat(dir_path)
        assert (info.path, info.size, info.is_dir) == (dir_path, 0, True)

        assert driver.stat("/").is_dir  # a non-empty store has a root directory
    finally:
        delete_path(driver, first_part(dir_path))


def test_stat_root_of_empty_store(driver: StorageDriver) -> None:
    """Stat("/") is a directory or PathNotFoundError, never another error."""
    try:
        info = driver.stat("/")
    except PathNotFoundError as exc:
        assert_driver_error(exc, PathNotFoundError, driver)
    else:
        assert info.is_dir
