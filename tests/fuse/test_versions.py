"""A reader gets bytes of one version only: two real mounts of one SeaweedFS bucket (issue 11, item 2).

Mount B reads a file in small reads; once it has read a third of it, the file is replaced with
other bytes of the same size (through mount A, or straight into the bucket for a blob). B's read
must then either return exactly the old content or fail with ``ESTALE`` (the errno table's
answer for a version that is gone), never a mix.  B's own readahead is kept at 1 MiB; with the
kernel's (``read_ahead_kb`` 4 MiB, at most two windows ahead) about 9 MiB are fetched ahead of
the reader, so the last third of the file is certainly fetched after the overwrite and the read
must fail (on today's SeaweedFS the old version is gone at once: no stale window after a PUT).
"""

from __future__ import annotations

import errno
import hashlib
import os
import random
import subprocess
from pathlib import Path
from typing import Any

from s3regfs.demo.localserver import LocalS3Server
from tests.support import mounts
from tests.support.mounts import Mount

MiB = 1024 * 1024
SIZE = 24 * MiB
READ = 256 * 1024
BLOB = "docker/registry/v2/blobs/sha256/ab/" + "ab" * 32 + "/data"
# Fills off (s3regfs/fs/blobfill.py): with a window smaller than the kernel's readahead most reads land
# outside it and look random, and a fill could fetch the whole blob before the overwrite.
SMALL_READAHEAD = {"readahead_min": 256 * 1024, "readahead_max": 1 * MiB, "read_part_size": 1 * MiB, "random_fill_max": 0}


def _content(seed: int) -> bytes:
    return random.Random(seed).randbytes(SIZE)


def _two_mounts(mount_factory: Any, params: dict[str, Any]) -> tuple[Mount, Mount]:
    options, env = mounts.s3_options(params)
    a = mount_factory("s3", options=options, env=env, name="a")
    b = mount_factory("s3", options={**options, **SMALL_READAHEAD}, env=env, name="b")
    return a, b


def _read_while_replaced(path: Path, replace: Any) -> tuple[bytes, OSError | None]:
    """Read ``path`` in small reads; call ``replace()`` once a third is read; (bytes, error)."""
    got = bytearray()
    replaced = False
    with open(path, "rb", buffering=0) as f:
        while True:
            if not replaced and len(got) >= SIZE // 3:
                replace()
                replaced = True
            try:
                chunk = f.read(READ)
            except OSError as exc:
                return bytes(got), exc
            if not chunk:
                return bytes(got), None
            got += chunk


def _assert_one_version(got: bytes, error: OSError | None, old: bytes, log: str) -> None:
    assert got == old[: len(got)], "bytes of another version were returned"
    assert error is not None and error.errno == errno.ESTALE, (
        f"expected ESTALE once the old version was gone, got {error!r} after {len(got)} bytes"
    )
    assert len(got) < SIZE
    assert "ESTALE" in log and "object changed" in log  # the daemon logged it


def test_a_reader_never_gets_bytes_of_two_versions(
    mount_factory: Any, s3_driver_params: dict[str, Any]
) -> None:
    a, b = _two_mounts(mount_factory, s3_driver_params)
    old, new = _content(1), _content(2)
    (a.path / "f").write_bytes(old)

    got, error = _read_while_replaced(b.path / "f", lambda: (a.path / "f").write_bytes(new))

    _assert_one_version(got, error, old, b.log())
    assert hashlib.sha256((b.path / "f").read_bytes()).digest() == hashlib.sha256(new).digest()


def test_a_data_cached_blob_rewritten_with_other_bytes_is_never_mixed(
    mount_factory: Any, s3_driver_params: dict[str, Any], s3_server: LocalS3Server, s3_bucket: str
) -> None:
    options, env = mounts.s3_options(s3_driver_params)
    b = mount_factory("s3", options={**options, **SMALL_READAHEAD}, env=env, name="b")
    old, new = _content(3), _content(4)
    client = s3_server.client()
    client.put_object(Bucket=s3_bucket, Key=BLOB, Body=old)

    got, error = _read_while_replaced(
        b.path / BLOB, lambda: client.put_object(Bucket=s3_bucket, Key=BLOB, Body=new)
    )

    _assert_one_version(got, error, old, b.log())
    # The failed read taught B the new version: its cached blocks of the old one are never used.
    assert hashlib.sha256((b.path / BLOB).read_bytes()).digest() == hashlib.sha256(new).digest()
    assert os.listdir(b.path.parent / "b-cache" / "data")  # the blob really went through the data cache


def test_random_reads_of_a_blob_being_filled_and_replaced_are_one_version(
    mount_factory: Any, s3_driver_params: dict[str, Any], s3_server: LocalS3Server, s3_bucket: str
) -> None:
    """Random reads start a background fill of the blob (s3regfs/fs/blobfill.py); the blob is
    replaced right after.  Every read of the handle is old bytes or ``ESTALE``, and a whole read
    afterwards is one version, old (from the data cache, within the metadata TTL) or new."""
    options, env = mounts.s3_options(s3_driver_params)
    b = mount_factory("s3", options={**options, **SMALL_READAHEAD, "random_fill_max": 512 * MiB}, env=env, name="b")
    old, new = _content(5), _content(6)
    client = s3_server.client()
    client.put_object(Bucket=s3_bucket, Key=BLOB, Body=old)
    rng = random.Random(3)
    offsets = [rng.randrange(SIZE // 4096) * 4096 for _ in range(200)]
    errors = []
    with open(b.path / BLOB, "rb", buffering=0) as f:
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_RANDOM)
        for i, offset in enumerate(offsets):
            if i == 8:  # the fill has just started
                client.put_object(Bucket=s3_bucket, Key=BLOB, Body=new)
            try:
                assert os.pread(f.fileno(), 4096, offset) == old[offset : offset + 4096], f"read {i} mixed versions"
            except OSError as exc:
                errors.append(exc.errno)
    assert set(errors) <= {errno.ESTALE}
    assert hashlib.sha256((b.path / BLOB).read_bytes()).digest() in {
        hashlib.sha256(old).digest(), hashlib.sha256(new).digest()
    }


def _writer_and_reader_without_metadata(
    mount_factory: Any, params: dict[str, Any], **reader: Any
) -> tuple[Mount, Mount]:
    """Mount A writes; mount B keeps no metadata (``metadata_ttl`` 0): it sees A's changes at once."""
    options, env = mounts.s3_options(params)
    a = mount_factory("s3", options=options, env=env, name="a")
    b = mount_factory("s3", options={**options, **reader, "metadata_ttl": 0}, env=env, name="b")
    return a, b


def _read_to_error(f: Any) -> OSError | None:
    """Read the rest of an open file in small reads: the error that ended it, or None at its end."""
    while True:
        try:
            if not f.read(READ):
                return None
        except OSError as exc:
            return exc


def test_a_file_opened_again_after_its_old_handle_failed_reads_the_new_version(
    mount_factory: Any, s3_driver_params: dict[str, Any]
) -> None:
    """The old handle stays open (a process still holding it, or a release the kernel has not sent
    yet): the new open reads the current version, never the old handle's gone one."""
    a, b = _two_mounts(mount_factory, s3_driver_params)
    old, new = _content(7), _content(8)
    (a.path / "f").write_bytes(old)
    with open(b.path / "f", "rb", buffering=0) as held:
        assert held.read(READ) == old[:READ]
        (a.path / "f").write_bytes(new)
        error = _read_to_error(held)
        assert error is not None and error.errno == errno.ESTALE, f"expected ESTALE, got {error!r}"
        assert hashlib.sha256((b.path / "f").read_bytes()).digest() == hashlib.sha256(new).digest()


def test_an_open_after_another_mount_replaced_a_file_held_open_reads_the_new_version(
    mount_factory: Any, s3_driver_params: dict[str, Any]
) -> None:
    """Close-to-open across mounts while this mount still holds the file open: the new handle reads
    the version the bucket has at its open (B keeps no metadata: ``metadata_ttl`` 0), the old handle
    old bytes or ``ESTALE``."""
    a, b = _writer_and_reader_without_metadata(mount_factory, s3_driver_params, **SMALL_READAHEAD)
    old, new = _content(9), _content(10)
    (a.path / "f").write_bytes(old)
    with open(b.path / "f", "rb", buffering=0) as held:
        got = held.read(READ)
        (a.path / "f").write_bytes(new)
        assert hashlib.sha256((b.path / "f").read_bytes()).digest() == hashlib.sha256(new).digest()
        rest = bytearray()
        try:
            while chunk := held.read(READ):
                rest += chunk
        except OSError as exc:
            assert exc.errno == errno.ESTALE, f"expected ESTALE, got {exc!r}"
        got += rest
    assert got == old[: len(got)], "the old handle returned bytes of another version"


def test_stat_of_a_file_held_open_shows_the_version_another_mount_wrote(
    mount_factory: Any, s3_driver_params: dict[str, Any]
) -> None:
    """The attributes of the name are the bucket's (within the metadata TTL; here none is kept), not
    those of the old version a handle still reads: ``stat`` and the next ``open`` agree."""
    a, b = _writer_and_reader_without_metadata(mount_factory, s3_driver_params)
    (a.path / "f").write_bytes(b"old version")
    with open(b.path / "f", "rb", buffering=0) as held:
        assert held.read(3) == b"old"
        (a.path / "f").write_bytes(b"the new, longer version")
        assert os.stat(b.path / "f").st_size == len(b"the new, longer version")
        listed = subprocess.run(["ls", "-ln", str(b.path)], capture_output=True, text=True, check=True).stdout
        assert [line.split()[4] for line in listed.splitlines() if line.endswith(" f")] == ["23"]  # ls -l agrees
        assert (b.path / "f").read_bytes() == b"the new, longer version"
        assert held.read() == b" version"  # the old handle reads its own version on, uncut


def test_a_shell_append_to_a_file_held_open_appends_to_the_version_another_mount_wrote(
    mount_factory: Any, s3_driver_params: dict[str, Any], s3_server: LocalS3Server, s3_bucket: str
) -> None:
    """``>>`` while a reader of this mount holds the old version: the new version plus the appended bytes."""
    a, b = _writer_and_reader_without_metadata(mount_factory, s3_driver_params)
    (a.path / "log").write_bytes(b"first line\n")
    with open(b.path / "log", "rb", buffering=0) as held:
        assert held.read(5) == b"first"
        (a.path / "log").write_bytes(b"another mount's line\n")
        subprocess.run(["sh", "-c", 'printf "appended line\\n" >> log'], cwd=b.path, check=True)
    body = s3_server.client().get_object(Bucket=s3_bucket, Key="log")["Body"].read()
    assert body == b"another mount's line\nappended line\n"


def test_a_file_this_mount_wrote_is_read_at_one_version_while_another_writer_replaces_it(
    mount_factory: Any, s3_driver_params: dict[str, Any], s3_server: LocalS3Server, s3_bucket: str
) -> None:
    """The mount's own commit names the object's ETag (driver extension 8), so the read is pinned
    like any other (old bytes, then ``ESTALE``), never old bytes then new ones."""
    options, env = mounts.s3_options(s3_driver_params)
    b = mount_factory("s3", options={**options, **SMALL_READAHEAD}, env=env, name="b")
    old, new = _content(11), _content(12)
    (b.path / "f").write_bytes(old)
    client = s3_server.client()

    got, error = _read_while_replaced(b.path / "f", lambda: client.put_object(Bucket=s3_bucket, Key="f", Body=new))

    _assert_one_version(got, error, old, b.log())


def test_files_this_mount_wrote_are_read_back_without_a_head(
    mount_factory: Any, s3_server: LocalS3Server, s3_bucket: str
) -> None:
    """A file read back within ``metadata_ttl`` of this mount's own write is pinned to the version its
    PUT or CompleteMultipartUpload answer named: ``cat`` of each costs its GETs and no HEAD."""
    files = {f"f{i}": random.Random(i).randbytes(size) for i, size in enumerate([64 * 1024] * 20 + [12 * MiB])}
    with mounts.proxied_s3_mount(mount_factory, s3_server, s3_bucket, stream_threshold=8 * MiB) as (mount, proxy):
        for name, data in files.items():
            (mount.path / name).write_bytes(data)
        proxy.reset()
        for name, data in files.items():
            done = subprocess.run(["cat", name], cwd=mount.path, capture_output=True, check=True, timeout=60)
            assert done.stdout == data
        counts = proxy.counts()
        assert mount.unmount() == 0
    assert set(counts) == {"GetObjectRange"} and counts["GetObjectRange"] >= len(files), counts
