"""Several writers and readers at once through one mount (the FUSE loop is multi-threaded)."""

from __future__ import annotations

import hashlib
import os
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from s3regfs.demo.localserver import LocalS3Server
from tests.support.mounts import Mount

KiB = 1024
MiB = 1024 * KiB


def _write(path: Path, size: int, seed: int, chunk: int = 256 * KiB) -> str:
    rng = random.Random(seed)
    digest = hashlib.sha256()
    with open(path, "wb", buffering=0) as f:
        left = size
        while left:
            data = rng.randbytes(min(chunk, left))
            f.write(data)
            digest.update(data)
            left -= len(data)
    return digest.hexdigest()


def _read(path: Path, chunk: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while data := f.read(chunk):
            digest.update(data)
    return digest.hexdigest()


def _mixed_load(root: Path, writers: int, readers: int, size: int) -> None:
    existing = {root / f"old{i}": _write(root / f"old{i}", size, 1000 + i) for i in range(readers)}
    with ThreadPoolExecutor(writers + readers) as pool:
        written = {root / f"new{i}": pool.submit(_write, root / f"new{i}", size + i * 7919, i) for i in range(writers)}
        read = [(p, pool.submit(_read, p, [4 * KiB, 64 * KiB, MiB][i % 3])) for i in range(3) for p in existing]
        results = {p: f.result(timeout=300) for p, f in written.items()}
        assert all(f.result(timeout=300) == existing[p] for p, f in read)
    for path, digest in results.items():
        assert _read(path, MiB) == digest
    assert sorted(os.listdir(root)) == sorted([f"old{i}" for i in range(readers)] + [f"new{i}" for i in range(writers)])


def test_several_writers_and_readers_at_once(mnt: Path) -> None:
    _mixed_load(mnt, writers=6, readers=6, size=3 * MiB)


def test_several_writers_and_readers_on_s3(s3_mount: Mount, s3_server: LocalS3Server, s3_bucket: str) -> None:
    _mixed_load(s3_mount.path, writers=4, readers=3, size=12 * MiB)
    keys = {o["Key"]: o["Size"] for o in s3_server.client().list_objects_v2(Bucket=s3_bucket)["Contents"]}
    assert keys == {**{f"old{i}": 12 * MiB for i in range(3)}, **{f"new{i}": 12 * MiB + i * 7919 for i in range(4)}}


def test_a_reader_of_one_file_while_a_writer_writes_another(mnt: Path) -> None:
    """Reads are served while a long write is in progress (neither waits for the other)."""
    stable = os.urandom(2 * MiB)
    (mnt / "stable").write_bytes(stable)
    writing = threading.Event()
    reads_during_write = 0
    with open(mnt / "growing", "wb", buffering=0) as f:
        f.write(os.urandom(MiB))
        writing.set()
        for _ in range(5):
            assert (mnt / "stable").read_bytes() == stable
            reads_during_write += 1
            f.write(os.urandom(MiB))
    assert reads_during_write == 5
    assert os.stat(mnt / "growing").st_size == 6 * MiB


def test_many_threads_listing_and_statting_while_files_change(mnt: Path) -> None:
    names = [f"f{i}" for i in range(40)]
    for name in names:
        (mnt / name).write_bytes(name.encode())
    stop = threading.Event()
    errors: list[BaseException] = []

    def churn() -> None:
        i = 0
        while not stop.is_set():
            (mnt / f"tmp{i % 5}").write_bytes(b"x" * i)
            os.replace(mnt / f"tmp{i % 5}", mnt / f"churn{i % 3}")
            i += 1

    def observe() -> None:
        try:
            for _ in range(30):
                listing = set(os.listdir(mnt))
                assert set(names) <= listing
                assert not [n for n in listing if n.startswith(".fuse_hidden")]
                for name in names[::7]:
                    assert (mnt / name).read_bytes() == name.encode()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    churner = threading.Thread(target=churn)
    churner.start()
    try:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: observe(), range(4)))
    finally:
        stop.set()
        churner.join(60)
    assert not errors, errors
