"""inmemory-specific behaviour (the shared contract is in tests/conformance): uploads, copies, threads."""

from __future__ import annotations

import threading

import pytest

from s3regfs.driver import DriverError, PathNotFoundError, factory
from s3regfs.driver.inmemory import InMemoryDriver


@pytest.fixture
def mem() -> InMemoryDriver:
    return InMemoryDriver()


def test_name(mem: InMemoryDriver) -> None:
    assert mem.name == "inmemory"


def test_in_progress_uploads_lifecycle(mem: InMemoryDriver) -> None:
    assert mem.in_progress_uploads() == []
    first = mem.writer("/a", False)
    first.write(b"1")
    second = mem.writer("/b", False)
    assert mem.in_progress_uploads() == ["/a", "/b"]
    first.close()
    assert mem.in_progress_uploads() == ["/a", "/b"]  # closed, resumable
    second.cancel()
    assert mem.in_progress_uploads() == ["/a"]
    resumed = mem.writer("/a", True)
    resumed.commit()
    assert mem.in_progress_uploads() == []
    assert mem.get_content("/a") == b"1"


def test_size_excludes_buffered_bytes(mem: InMemoryDriver) -> None:
    """Like v3 s3: Size counts only flushed bytes; Close flushes."""
    writer = mem.writer("/f", False)
    writer.write(b"12345")
    assert writer.size() == 0
    writer.close()
    assert writer.size() == 5


def test_concurrent_uploads_for_one_key_resume_the_oldest(mem: InMemoryDriver) -> None:
    """As S3 lists uploads by initiation time, append resumes the oldest open upload."""
    old = mem.writer("/k", False)
    old.write(b"old")
    old.close()
    new = mem.writer("/k", False)
    new.write(b"new!")
    new.close()
    assert mem.in_progress_uploads() == ["/k", "/k"]
    resumed = mem.writer("/k", True)
    assert resumed.size() == 3
    resumed.commit()
    assert mem.get_content("/k") == b"old"
    assert mem.in_progress_uploads() == ["/k"]
    last = mem.writer("/k", True)
    assert last.size() == 4
    last.cancel()
    assert mem.in_progress_uploads() == []


def test_append_rules(mem: InMemoryDriver) -> None:
    with pytest.raises(PathNotFoundError):
        mem.writer("/missing", True)
    mem.put_content("/empty", b"")
    fresh = mem.writer("/empty", True)
    assert fresh.size() == 0
    fresh.write(b"xy")
    fresh.commit()
    assert mem.get_content("/empty") == b"xy"
    with pytest.raises(DriverError, match="append to zero-size path /empty unsupported"):
        mem.writer("/empty", True)  # upstream's (misleading) text for a non-empty file


def test_put_content_copies_its_input(mem: InMemoryDriver) -> None:
    data = bytearray(b"abc")
    mem.put_content("/c", data)
    data[0] = ord("z")
    assert mem.get_content("/c") == b"abc"


def test_write_copies_its_input(mem: InMemoryDriver) -> None:
    data = bytearray(b"abc")
    writer = mem.writer("/w", False)
    writer.write(memoryview(data))
    data[0] = ord("z")
    writer.commit()
    assert mem.get_content("/w") == b"abc"


def test_list_info_files_then_dirs(mem: InMemoryDriver) -> None:
    """The listing shape of s3: files in key order, then directories in key order."""
    for path in ["/d/z", "/d/a/x", "/d/b", "/d/c/y"]:
        mem.put_content(path, b"")
    assert [i.path for i in mem.list_info("/d")] == ["/d/b", "/d/z", "/d/a", "/d/c"]
    assert mem.list("/d") == ["/d/a", "/d/b", "/d/c", "/d/z"]


def test_directory_reads_are_not_found(mem: InMemoryDriver) -> None:
    mem.put_content("/dir/f", b"x")
    for call in (lambda: mem.get_content("/dir"), lambda: mem.reader("/dir"), lambda: mem.move("/dir", "/e")):
        with pytest.raises(PathNotFoundError):
            call()
    assert mem.stat("/dir").is_dir


def test_root_always_exists(mem: InMemoryDriver) -> None:
    assert mem.stat("/").is_dir
    assert mem.list("/") == []


def test_move_onto_itself_keeps_content(mem: InMemoryDriver) -> None:
    mem.put_content("/same", b"keep")
    mem.move("/same", "/same")
    assert mem.get_content("/same") == b"keep"


def test_read_range_non_positive_length(mem: InMemoryDriver) -> None:
    mem.put_content("/r", b"0123456789")
    assert mem.read_range("/r", 2, 3) == b"234"
    assert mem.read_range("/r", 2, 0) == b""
    assert mem.read_range("/r", 0, -1) == b""


def test_parallel_writers_and_readers() -> None:
    driver = factory.create("inmemory")
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for j in range(50):
                path = f"/t{i}/f{j}"
                writer = driver.writer(path, False)
                writer.write(bytes([i]) * (j + 1))
                writer.commit()
                writer.close()
                assert driver.get_content(path) == bytes([i]) * (j + 1)
                driver.list("/")
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert sorted(driver.list("/")) == [f"/t{i}" for i in range(8)]
