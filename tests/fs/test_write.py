"""Writes: streaming, spill, truncate, O_APPEND, read-back, fsync, failures, visibility, unlink while open."""

from __future__ import annotations

import errno
import logging
import os
import random

import pytest

from s3regfs.driver.errors import DriverError, PathNotFoundError
from s3regfs.fs.errors import FsError
from tests.fs.conftest import Mount

KiB = 1024
MiB = 1024 * KiB
W = os.O_WRONLY
RW = os.O_RDWR
NEW = os.O_WRONLY | os.O_CREAT | os.O_TRUNC


def _payload(n: int, seed: int = 3) -> bytes:
    return random.Random(seed).randbytes(n)


def _streaming(**extra: object) -> dict[str, object]:
    opts: dict[str, object] = {"stream_threshold": 256 * KiB, "read_part_size": 128 * KiB}
    opts.update(extra)
    return opts


def _visible(m: Mount, path: str) -> bytes | None:
    try:
        return m.store.get_content(path)
    except PathNotFoundError:
        return None


def _errno(fn) -> int:  # type: ignore[no-untyped-def]
    with pytest.raises(FsError) as info:
        fn()
    return info.value.errno


# -- the sequential path -----------------------------------------------------------------------------------


def test_new_file_written_sequentially_streams_into_the_writer(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(**_streaming())
    data = _payload(2 * MiB)
    fh = m.fs.create("/layer", NEW, 0o644)
    for off in range(0, len(data), 128 * KiB):
        m.fs.write(fh, off, data[off : off + 128 * KiB])
    # parts went to the driver while the application was writing ...
    assert m.driver.count("writer") == 1 and m.driver.count("writer.write") >= 8
    assert m.store.in_progress_uploads() == ["/layer"]
    # ... but nothing is visible until the commit
    assert _visible(m, "/layer") is None
    m.fs.flush(fh)
    assert _visible(m, "/layer") == data
    assert m.driver.count("writer.commit") == 1 and m.driver.count("put_content") == 0
    m.fs.release(fh)
    assert m.store.in_progress_uploads() == []


def test_small_file_is_one_put_content(m: Mount) -> None:
    with pytest.raises(FsError):
        m.fs.getattr("/small")  # the kernel's lookup before create (cached as absent)
    m.driver.reset()
    fh = m.fs.create("/small", NEW, 0o644)
    m.fs.write(fh, 0, b"hello ")
    m.fs.write(fh, 6, b"world")
    m.fs.flush(fh)
    m.fs.release(fh)
    assert m.store.get_content("/small") == b"hello world"
    assert m.driver.snapshot() == {"put_content": 1}


@pytest.mark.parametrize("size", [64 * KiB, 2 * MiB], ids=["staged", "streamed"])
def test_a_write_keeps_no_reference_to_the_callers_buffer(make_fs, size: int) -> None:  # type: ignore[no-untyped-def]
    """The FUSE adapter passes a view of libfuse's buffer, reused after the call: what is
    saved is what the buffer held during ``write``, whatever it holds later."""
    m = make_fs(**_streaming())
    data = _payload(size)
    buffer = bytearray(128 * KiB)
    fh = m.fs.create("/reused", NEW, 0o644)
    for off in range(0, size, len(buffer)):
        buffer[:] = data[off : off + len(buffer)]
        with memoryview(buffer) as view:
            assert m.fs.write(fh, off, view) == len(buffer)
        buffer[:] = bytes(len(buffer))  # libfuse reuses its buffer for the next request
    m.fs.flush(fh)
    m.fs.release(fh)
    assert _visible(m, "/reused") == data


def test_empty_file_created_and_closed_exists(m: Mount) -> None:
    fh = m.fs.create("/empty", NEW, 0o644)
    m.fs.flush(fh)
    assert m.driver.count("put_content") == 0  # nothing written through the handle: the flush commits nothing
    m.fs.release(fh)
    assert m.store.get_content("/empty") == b""
    assert m.fs.getattr("/empty").size == 0
    assert m.names("/") == ["empty"]


def test_getattr_reports_the_size_written_so_far(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(**_streaming())
    fh = m.fs.create("/growing", NEW, 0o644)
    assert m.fs.getattr("/growing").size == 0
    m.fs.write(fh, 0, b"x" * 1000)
    assert m.fs.getattr("/growing").size == 1000
    assert m.fs.getattr("/growing", fh).size == 1000
    assert dict(m.fs.readdir("/"))["growing"].size == 1000
    m.fs.write(fh, 1000, b"y" * 300 * KiB)  # streaming now
    assert m.fs.getattr("/growing").size == 1000 + 300 * KiB
    m.fs.release(fh)


# -- everything else goes to the spill file -------------------------------------------------------------------


def test_random_writes_are_staged_and_uploaded_complete(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(**_streaming())
    model = bytearray()
    fh = m.fs.create("/random", NEW, 0o644)
    rng = random.Random(11)
    for _ in range(40):
        off = rng.randrange(0, 600 * KiB)
        chunk = rng.randbytes(rng.randrange(1, 64 * KiB))
        m.fs.write(fh, off, chunk)
        if len(model) < off:
            model += bytes(off - len(model))
        model[off : off + len(chunk)] = chunk
    assert _visible(m, "/random") is None
    m.fs.flush(fh)
    m.fs.release(fh)
    assert m.store.get_content("/random") == bytes(model)


def test_seek_back_during_a_streaming_write_cancels_the_stream_and_keeps_every_byte(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(**_streaming())
    data = bytearray(_payload(1 * MiB))
    fh = m.fs.create("/patched", NEW, 0o644)
    for off in range(0, len(data), 64 * KiB):
        m.fs.write(fh, off, bytes(data[off : off + 64 * KiB]))
    assert m.store.in_progress_uploads() == ["/patched"]
    m.fs.write(fh, 0, b"HEADER")  # e.g. a zip/mp4 writer patching its header
    data[0:6] = b"HEADER"
    assert m.driver.count("writer.cancel") == 1 and m.store.in_progress_uploads() == []
    m.fs.flush(fh)
    m.fs.release(fh)
    assert m.store.get_content("/patched") == bytes(data)


def test_overwriting_part_of_an_existing_object(m: Mount) -> None:
    m.put("/f", b"0123456789")
    fh = m.fs.open("/f", W)
    m.fs.write(fh, 3, b"abc")
    m.fs.release(fh)
    assert m.store.get_content("/f") == b"012abc6789"


def test_modifying_an_object_replaced_after_bytes_were_read_is_estale(m: Mount) -> None:
    """The download for a modification is pinned to the version the handle read from."""
    m.put("/f", b"0123456789")
    fh = m.fs.open("/f", RW)
    assert m.fs.read(fh, 0, 4) == b"0123"
    m.put("/f", b"ABCDEFGHIJ")  # another writer, same size
    assert _errno(lambda: m.fs.write(fh, 3, b"abc")) == errno.ESTALE
    m.fs.release(fh)
    assert m.store.get_content("/f") == b"ABCDEFGHIJ"  # nothing spliced was uploaded


def test_modifying_an_object_replaced_before_anything_was_read_applies_to_the_new_one(m: Mount) -> None:
    m.put("/f", b"0123456789")
    fh = m.fs.open("/f", W)
    m.put("/f", b"ABCDEFGHIJKLMN")  # replaced between the open and the first write
    m.fs.write(fh, 3, b"abc")
    m.fs.release(fh)
    assert m.store.get_content("/f") == b"ABCabcGHIJKLMN"


def test_modifying_a_file_this_mount_wrote_copies_one_version_while_another_writer_replaces_it(make_fs) -> None:  # type: ignore[no-untyped-def]
    """The copy a modification starts from is made in parallel parts; the mount's own commit left it
    without the version, so it asks first: a version replaced between the parts is copied again whole,
    never pieced together from two versions."""
    m = make_fs(read_part_size=64 * KiB)
    old, new = _payload(256 * KiB), _payload(256 * KiB, seed=8)
    m.write_file("/f", old)
    inner = m.faulty.read_range
    replaced = []

    def read_range(path: str, offset: int, length: int, etag: str | None = None) -> bytes:
        data = inner(path, offset, length, etag)
        if not replaced:  # another writer replaces the object right after the first part was read
            replaced.append(offset)
            m.put("/f", new)
        return data

    m.faulty.read_range = read_range  # type: ignore[method-assign]
    fh = m.fs.open("/f", W | os.O_APPEND)
    m.fs.write(fh, 0, b"appended")
    m.fs.release(fh)
    assert replaced
    assert m.store.get_content("/f") == new + b"appended"


def test_o_append_on_an_existing_object(m: Mount) -> None:
    m.put("/log", b"line1\n")
    fh = m.fs.open("/log", W | os.O_APPEND)
    m.fs.write(fh, 0, b"line2\n")  # the offset is ignored: O_APPEND writes at the end
    m.fs.write(fh, 0, b"line3\n")
    m.fs.release(fh)
    assert m.store.get_content("/log") == b"line1\nline2\nline3\n"


def test_truncate_to_any_size(m: Mount) -> None:
    m.put("/t", b"0123456789")
    m.fs.truncate("/t", 4)
    assert m.store.get_content("/t") == b"0123"
    m.fs.truncate("/t", 8)
    assert m.store.get_content("/t") == b"0123\0\0\0\0"
    m.fs.truncate("/t", 0)
    assert m.store.get_content("/t") == b""
    m.driver.reset()
    m.fs.truncate("/t", 0)  # already that size: nothing to do
    assert m.driver.count("put_content", "writer") == 0


def test_ftruncate_on_an_open_handle(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(**_streaming())
    fh = m.fs.create("/ft", NEW, 0o644)
    m.fs.write(fh, 0, b"a" * 400 * KiB)  # streaming
    m.fs.truncate("/ft", 100, fh)
    assert m.fs.getattr("/ft").size == 100
    m.fs.write(fh, 100, b"b")
    m.fs.truncate("/ft", 0, fh)  # the registry's filesystem driver truncates a fresh file to 0
    m.fs.write(fh, 0, b"fresh")
    m.fs.release(fh)
    assert m.store.get_content("/ft") == b"fresh"


def test_truncate_of_a_fresh_empty_file_keeps_streaming(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(**_streaming())
    fh = m.fs.create("/upload", NEW, 0o644)
    m.fs.truncate("/upload", 0, fh)
    for off in range(0, 1 * MiB, 128 * KiB):
        m.fs.write(fh, off, b"z" * 128 * KiB)
    assert m.store.in_progress_uploads() == ["/upload"]
    m.fs.release(fh)
    assert len(m.store.get_content("/upload")) == 1 * MiB


def test_reading_back_a_file_while_it_is_being_written(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(**_streaming())
    data = _payload(600 * KiB)
    w = m.fs.create("/rw", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    m.fs.write(w, 0, data[: 500 * KiB])
    assert m.fs.read(w, 100, 1000) == data[100:1100]
    r = m.fs.open("/rw", os.O_RDONLY)  # another handle, as `tail -f` would
    assert m.fs.read(r, 400 * KiB, 200 * KiB) == data[400 * KiB : 500 * KiB]
    m.fs.write(w, 500 * KiB, data[500 * KiB :])
    assert m.fs.read(r, 0, len(data) + 10) == data
    m.fs.release(r)
    m.fs.release(w)
    assert m.store.get_content("/rw") == data


def test_open_o_trunc_replaces_the_content_at_close(m: Mount) -> None:
    m.put("/f", b"old content")
    fh = m.fs.open("/f", W | os.O_TRUNC)
    assert m.fs.getattr("/f").size == 0
    assert m.store.get_content("/f") == b"old content"  # the bucket changes only at the commit
    m.fs.write(fh, 0, b"new")
    m.fs.release(fh)
    assert m.store.get_content("/f") == b"new"


# -- commit points -------------------------------------------------------------------------------------------


def test_a_flush_before_any_write_commits_nothing(m: Mount) -> None:
    """``dd``, a shell redirect: open, dup2, close the original descriptor, then write."""
    m.put("/f", b"previous")
    fh = m.fs.create("/f", NEW, 0o644, pid=7)
    m.fs.flush(fh, pid=7)
    assert m.store.get_content("/f") == b"previous"
    m.fs.write(fh, 0, b"new")
    m.fs.flush(fh, pid=7)
    assert m.store.get_content("/f") == b"new"
    m.fs.release(fh)
    assert m.driver.count("put_content") == 1


def test_a_flush_from_another_process_commits_nothing(m: Mount) -> None:
    """A child that inherited the descriptor exits: its close is not the writer's."""
    fh = m.fs.create("/f", NEW, 0o644, pid=7)
    m.fs.write(fh, 0, b"half")
    m.fs.flush(fh, pid=8)
    assert m.driver.count("put_content") == 0
    m.fs.write(fh, 4, b"-whole")
    m.fs.flush(fh, pid=7)
    assert m.store.get_content("/f") == b"half-whole"


def test_what_a_skipped_flush_left_is_committed_at_release_or_fsync(m: Mount) -> None:
    fh = m.fs.create("/f", NEW, 0o644, pid=7)
    m.fs.write(fh, 0, b"data")
    m.fs.flush(fh, pid=8)
    m.fs.release(fh)
    assert m.store.get_content("/f") == b"data"
    fh = m.fs.open("/f", os.O_WRONLY | os.O_TRUNC, pid=7)
    m.fs.flush(fh, pid=7)
    assert m.store.get_content("/f") == b"data"
    m.fs.fsync(fh, False)
    assert m.store.get_content("/f") == b""
    m.fs.release(fh)


def test_commit_at_first_flush_and_not_again_without_new_writes(m: Mount) -> None:
    fh = m.fs.create("/f", NEW, 0o644)
    m.fs.write(fh, 0, b"abc")
    m.driver.reset()
    m.fs.flush(fh)  # close() of the first fd
    m.fs.flush(fh)  # close() of a dup'd fd
    m.fs.release(fh)
    assert m.driver.count("put_content") == 1


def test_writes_after_a_flush_are_uploaded_by_the_next_flush_or_release(m: Mount) -> None:
    fh = m.fs.create("/f", NEW, 0o644)
    m.fs.write(fh, 0, b"one")
    m.fs.flush(fh)
    assert m.store.get_content("/f") == b"one"
    m.fs.write(fh, 3, b"two")  # e.g. through a dup'd fd, or mmap
    assert m.store.get_content("/f") == b"one"
    m.fs.release(fh)
    assert m.store.get_content("/f") == b"onetwo"


def test_fsync_may_be_called_repeatedly(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(**_streaming())
    fh = m.fs.create("/journal", NEW, 0o644)
    expected = b""
    for i in range(4):
        block = _payload(200 * KiB, seed=i)
        m.fs.write(fh, len(expected), block)
        expected += block
        m.fs.fsync(fh, False)
        assert m.store.get_content("/journal") == expected
    m.driver.reset()
    m.fs.fsync(fh, True)  # nothing new: no request
    assert m.driver.count() == 0
    m.fs.release(fh)
    assert m.store.get_content("/journal") == expected


def test_fsync_of_a_streaming_writer_commits_and_writing_continues(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(**_streaming())
    fh = m.fs.create("/s", NEW, 0o644)
    m.fs.write(fh, 0, b"a" * 512 * KiB)
    m.fs.fsync(fh, False)
    assert m.driver.count("writer.commit") == 1
    assert len(m.store.get_content("/s")) == 512 * KiB
    m.fs.write(fh, 512 * KiB, b"b" * 512 * KiB)
    m.fs.release(fh)
    assert m.store.get_content("/s") == b"a" * 512 * KiB + b"b" * 512 * KiB


# -- failures --------------------------------------------------------------------------------------------------


def test_failed_upload_is_eio_at_flush_and_the_data_is_not_reported_saved(m: Mount) -> None:
    m.faulty.fail("put_content", path="/f")
    fh = m.fs.create("/f", NEW, 0o644)
    m.fs.write(fh, 0, b"precious")
    assert _errno(lambda: m.fs.flush(fh)) == errno.EIO
    assert _visible(m, "/f") is None
    m.fs.flush(fh)  # the data stayed local and dirty: the next flush tries again
    assert m.store.get_content("/f") == b"precious"
    m.fs.release(fh)


def test_failed_upload_is_eio_at_fsync(m: Mount) -> None:
    m.faulty.fail("put_content", times=None)
    fh = m.fs.create("/f", NEW, 0o644)
    m.fs.write(fh, 0, b"x")
    assert _errno(lambda: m.fs.fsync(fh, False)) == errno.EIO
    assert _errno(lambda: m.fs.fsync(fh, False)) == errno.EIO
    m.faulty.clear()
    m.fs.fsync(fh, False)
    assert m.store.get_content("/f") == b"x"
    m.fs.release(fh)


def test_a_failed_streaming_part_falls_back_to_the_local_copy(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(**_streaming())
    m.faulty.fail("writer.write", after=3)
    data = _payload(1 * MiB)
    fh = m.fs.create("/s", NEW, 0o644)
    for off in range(0, len(data), 64 * KiB):
        m.fs.write(fh, off, data[off : off + 64 * KiB])
    m.fs.flush(fh)
    m.fs.release(fh)
    assert m.store.get_content("/s") == data


def test_a_failed_streaming_commit_is_retried_from_the_local_copy(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(**_streaming())
    m.faulty.fail("writer.commit", times=1)
    data = _payload(700 * KiB)
    fh = m.fs.create("/s", NEW, 0o644)
    m.fs.write(fh, 0, data)
    m.fs.flush(fh)
    assert m.store.get_content("/s") == data
    m.fs.release(fh)


def test_every_upload_failing_is_eio_and_nothing_half_written_appears(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(**_streaming())
    m.faulty.fail("writer.commit", times=None)
    fh = m.fs.create("/s", NEW, 0o644)
    m.fs.write(fh, 0, _payload(700 * KiB))
    assert _errno(lambda: m.fs.flush(fh)) == errno.EIO
    assert _visible(m, "/s") is None
    assert m.store.in_progress_uploads() == []


def test_access_denied_is_eacces(m: Mount) -> None:
    denied = DriverError(PermissionError(errno.EACCES, "AccessDenied"), "s3aws")
    m.faulty.fail("put_content", denied)
    fh = m.fs.create("/f", NEW, 0o644)
    m.fs.write(fh, 0, b"x")
    assert _errno(lambda: m.fs.flush(fh)) == errno.EACCES
    m.fs.release(fh)


def test_data_lost_at_release_is_logged_and_reported_by_shutdown(
    m: Mount, caplog: pytest.LogCaptureFixture
) -> None:
    m.faulty.fail("put_content", times=None)
    fh = m.fs.create("/doomed", NEW, 0o644)
    m.fs.write(fh, 0, b"x")
    with caplog.at_level(logging.ERROR):
        m.fs.release(fh)  # the kernel ignores release's result: the loss is logged and counted
    assert "/doomed" in caplog.text and "NOT be saved" in caplog.text
    assert m.fs.lost == ["/doomed"]
    assert m.fs.shutdown(timeout=5) is False
    assert m.names("/") == []


def test_shutdown_uploads_pending_files(m: Mount) -> None:
    fh = m.fs.create("/pending", NEW, 0o644)
    m.fs.write(fh, 0, b"unsaved")
    assert m.fs.shutdown(timeout=5) is True
    assert m.store.get_content("/pending") == b"unsaved"


def test_shutdown_reports_failed_pending_uploads(m: Mount) -> None:
    fh = m.fs.create("/pending", NEW, 0o644)
    m.fs.write(fh, 0, b"unsaved")
    m.faulty.fail("put_content", times=None)
    assert m.fs.shutdown(timeout=5) is False


def test_no_local_space_while_streaming_keeps_streaming(make_fs, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(**_streaming())
    fh = m.fs.create("/s", NEW, 0o644)
    m.fs.write(fh, 0, b"a" * 300 * KiB)  # streaming from here on
    node = m.fs._handles.get(fh).node
    assert node.stream is not None

    def full(offset: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(node.local, "pwrite", full)
    m.fs.write(fh, 300 * KiB, b"b" * 100 * KiB)  # appending still works, without a local copy
    assert _errno(lambda: m.fs.write(fh, 0, b"x")) == errno.ENOSPC  # anything else cannot be staged
    m.fs.flush(fh)
    m.fs.release(fh)
    assert m.store.get_content("/s") == b"a" * 300 * KiB + b"b" * 100 * KiB


def test_no_local_space_for_a_small_file_is_enospc(m: Mount, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    fh = m.fs.create("/f", NEW, 0o644)
    node = m.fs._handles.get(fh).node

    def full(offset: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(node.local, "pwrite", full)
    assert _errno(lambda: m.fs.write(fh, 0, b"x")) == errno.ENOSPC
    m.fs.release(fh)


# -- create, O_EXCL, temp + rename ------------------------------------------------------------------------------


def test_o_excl_on_an_existing_name_is_eexist(m: Mount) -> None:
    m.put("/exists", b"x")
    assert _errno(lambda: m.fs.create("/exists", NEW | os.O_EXCL, 0o644)) == errno.EEXIST
    fh = m.fs.create("/pending", NEW | os.O_EXCL, 0o644)
    assert _errno(lambda: m.fs.create("/pending", NEW | os.O_EXCL, 0o644)) == errno.EEXIST
    m.fs.release(fh)
    m.fs.mkdir("/dir", 0o755)
    assert _errno(lambda: m.fs.create("/dir", NEW, 0o644)) == errno.EISDIR
    assert m.store.get_content("/exists") == b"x"


def test_create_without_trunc_on_an_existing_name_keeps_the_content(m: Mount) -> None:
    m.put("/f", b"keep")
    fh = m.fs.create("/f", os.O_WRONLY | os.O_CREAT, 0o644)
    m.fs.release(fh)
    assert m.store.get_content("/f") == b"keep"


def test_write_temp_then_rename_over_the_target_leaves_only_the_target(m: Mount) -> None:
    m.put("/config.yml", b"old")
    fh = m.fs.create("/.config.yml.swp", NEW, 0o644)
    m.fs.write(fh, 0, b"new")
    m.fs.flush(fh)
    m.fs.release(fh)
    m.fs.rename("/.config.yml.swp", "/config.yml")
    assert m.store.list("/") == ["/config.yml"]
    assert m.store.get_content("/config.yml") == b"new"
    assert m.names("/") == ["config.yml"]


def test_rename_of_a_file_open_for_writing_flushes_it_first(m: Mount) -> None:
    fh = m.fs.create("/tmp1", NEW, 0o644)
    m.fs.write(fh, 0, b"data")
    m.fs.rename("/tmp1", "/final")
    assert m.store.get_content("/final") == b"data"
    m.fs.write(fh, 4, b"+more")  # the handle follows the file to its new name
    m.fs.release(fh)
    assert m.store.get_content("/final") == b"data+more"
    assert m.store.list("/") == ["/final"]


# -- unlink while open -----------------------------------------------------------------------------------------


def test_unlinked_open_file_vanishes_at_once_and_stays_readable(m: Mount) -> None:
    m.put("/f", b"still here")
    fh = m.fs.open("/f", os.O_RDONLY)
    m.fs.unlink("/f")
    assert m.names("/") == []
    assert _errno(lambda: m.fs.getattr("/f")) == errno.ENOENT
    assert _visible(m, "/f") is None  # small file: copied locally, deleted at once
    assert m.fs.read(fh, 0, 100) == b"still here"
    assert m.fs.getattr("/f", fh).size == 10
    m.fs.release(fh)
    assert not any(".fuse_hidden" in n for n in m.names("/"))


def test_unlinked_large_open_file_is_deleted_at_its_last_close(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(unlink_download_max=1 * KiB)
    data = _payload(64 * KiB)
    m.put("/big", data)
    fh = m.fs.open("/big", os.O_RDONLY)
    m.driver.reset()
    m.fs.unlink("/big")
    assert m.driver.count("read_range") == 0  # not downloaded
    assert m.names("/") == []
    assert _errno(lambda: m.fs.getattr("/big")) == errno.ENOENT
    assert m.fs.read(fh, 0, len(data)) == data
    m.fs.release(fh)
    assert _visible(m, "/big") is None


def test_reusing_the_name_of_an_unlinked_open_file(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(unlink_download_max=1 * KiB)
    m.put("/n", b"old" * 1000)
    old = m.fs.open("/n", os.O_RDONLY)
    m.fs.unlink("/n")
    m.write_file("/n", b"new")
    assert m.fs.read(old, 0, 6) == b"oldold"
    m.fs.release(old)
    assert m.store.get_content("/n") == b"new"  # the old handle's deferred delete did not hit the new file


def test_an_unlinked_file_being_written_is_never_uploaded(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(**_streaming())
    fh = m.fs.create("/scratch", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    m.fs.write(fh, 0, b"s" * 400 * KiB)  # streaming
    m.fs.unlink("/scratch")
    m.fs.write(fh, 400 * KiB, b"more")
    assert m.fs.read(fh, 400 * KiB, 10) == b"more"
    m.fs.flush(fh)
    m.fs.release(fh)
    assert _visible(m, "/scratch") is None and m.store.in_progress_uploads() == []
    assert m.names("/") == []


def test_rename_over_an_open_file_keeps_its_handles_reading_the_old_content(m: Mount) -> None:
    m.put("/target", b"old target")
    m.put("/src", b"new content")
    fh = m.fs.open("/target", os.O_RDONLY)
    m.fs.rename("/src", "/target")
    assert m.fs.read(fh, 0, 100) == b"old target"
    m.fs.release(fh)
    assert m.read_file("/target") == b"new content"
    assert m.store.list("/") == ["/target"]


# -- spill files ------------------------------------------------------------------------------------------------


def test_spill_files_have_no_names_and_are_gone_after_upload(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(**_streaming())
    fhs = [m.fs.create(f"/docker/registry/f{i}", NEW, 0o644) if False else None for i in range(0)]
    m.fs.mkdir("/d", 0o755)
    fhs = [m.fs.create(f"/d/f{i}", NEW, 0o644) for i in range(3)]
    for i, fh in enumerate(fhs):
        m.fs.write(fh, 0, b"x" * (i + 1) * 100 * KiB)
    spill = m.cache_dir / "spill"
    assert m.fs._spill.open_files == 3
    assert all(not name.startswith("f") and "/d" not in name for name in os.listdir(spill))
    for fh in fhs:
        m.fs.release(fh)
    assert m.fs._spill.open_files == 0
    assert os.listdir(spill) == []


def test_unusable_cache_dir_is_one_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from s3regfs import exitcodes
    from s3regfs.driver.inmemory import InMemoryDriver
    from s3regfs.errors import UserError
    from s3regfs.fs.core import RegistryFilesystem
    from s3regfs.fs.errors import CacheDirError
    from s3regfs.fs.options import FsOptions
    from s3regfs.mount import build_core

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    options = FsOptions(cache_dir=str(blocker))
    with pytest.raises(CacheDirError) as raised:  # the core says what failed, as an OSError
        RegistryFilesystem(InMemoryDriver(), options)
    assert raised.value.cache_dir == str(blocker) and raised.value.errno == errno.ENOTDIR
    with pytest.raises(UserError) as info:  # the mount words it, with the option to change
        build_core(InMemoryDriver(), options)
    assert "cache_dir" in str(info.value) and str(blocker) in str(info.value)
    assert info.value.exit_code == exitcodes.CONFIG


def test_deferred_delete_spares_an_object_another_writer_put_meanwhile(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(unlink_download_max=1 * KiB)
    m.put("/big", b"o" * 4096)
    fh = m.fs.open("/big", os.O_RDONLY)
    m.fs.unlink("/big")
    m.put("/big", b"a new object from another mount")
    m.fs.release(fh)
    assert m.store.get_content("/big") == b"a new object from another mount"


def test_a_failed_overwrite_leaves_the_old_object(m: Mount) -> None:
    m.put("/f", b"old")
    m.faulty.fail("put_content", path="/f")
    fh = m.fs.open("/f", W | os.O_TRUNC)
    m.fs.write(fh, 0, b"new")
    assert _errno(lambda: m.fs.flush(fh)) == errno.EIO
    assert m.store.get_content("/f") == b"old"
    m.fs.release(fh)
    assert m.store.get_content("/f") == b"new"


def test_a_failed_download_for_a_modification_is_eio_and_can_be_retried(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(read_part_size=16 * KiB)
    data = _payload(200 * KiB)
    m.put("/f", data)
    m.faulty.fail("read_range", path="/f", after=3)
    fh = m.fs.open("/f", RW)
    assert _errno(lambda: m.fs.write(fh, 5, b"X")) == errno.EIO
    assert m.fs._spill.open_files == 0
    m.fs.write(fh, 5, b"X")  # the next write downloads again
    m.fs.release(fh)
    assert m.store.get_content("/f") == data[:5] + b"X" + data[6:]


def test_libfuse_stand_in_names_are_answered_from_the_open_file_without_requests(m: Mount) -> None:
    m.write_file("/d/f", b"content")
    fh = m.fs.open("/d/f", os.O_RDWR)
    hidden = "/d/.fuse_hidden0000000400000001"
    m.driver.reset()
    with pytest.raises(FsError) as info:
        m.fs.getattr(hidden)  # libfuse's check that the stand-in name is free
    assert info.value.errno == errno.ENOENT
    m.fs.rename("/d/f", hidden)  # libfuse's unlink of an open file
    attr = m.fs.getattr(hidden)
    assert (attr.size, attr.nlink) == (7, 0)
    m.fs.chmod(hidden, 0o600)
    m.fs.truncate(hidden, 3)
    assert (m.fs.getattr(hidden).mode & 0o777, m.fs.getattr(None, fh).size) == (0o600, 3)
    assert m.driver.count("stat") == 0  # the stand-in name is never asked of the bucket
    assert m.names("/d") == []
    assert m.fs.read(fh, 0, 10) == b"con"
    m.fs.release(fh)
    m.fs.unlink(hidden)  # libfuse drops it after the last close
    with pytest.raises(PathNotFoundError):
        m.store.stat("/d/f")
    with pytest.raises(PathNotFoundError):
        m.store.stat(hidden)  # never a key
