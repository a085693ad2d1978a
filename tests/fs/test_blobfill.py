"""A blob read at random is fetched whole into the data cache in the background (s3regfs/fs/blobfill.py)."""

from __future__ import annotations

import os
import random
import threading
import time

import pytest

from s3regfs.driver.errors import DriverError
from s3regfs.fs.blobfill import FILL_AFTER, FILL_PARTS, FILL_SOONER
from tests.fs.conftest import Mount

KiB = 1024
MiB = 1024 * KiB
BLOB = "/docker/registry/v2/blobs/sha256/ab/" + "ab" * 32 + "/data"
PART = 256 * KiB


def _options(**extra: object) -> dict[str, object]:
    opts: dict[str, object] = {
        "readahead_min": 64 * KiB,
        "readahead_max": 1 * MiB,
        "readahead_budget": 2 * MiB,
        "read_part_size": PART,
        "data_cache_block": 64 * KiB,
    }
    opts.update(extra)
    return opts


@pytest.fixture(autouse=True)
def _count_reads_only(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stalled test machine must not make an in-memory store look distant (``FILL_WAIT``)."""
    if "distant" not in request.node.name:
        monkeypatch.setattr("s3regfs.fs.reading.FILL_WAIT", float("inf"))


def _payload(n: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(n)


def _random_reads(m: Mount, fh: int, data: bytes, count: int, seed: int = 7) -> None:
    """``count`` 4 KiB reads at scattered offsets, each checked against ``data``."""
    rng = random.Random(seed)
    for _ in range(count):
        offset = rng.randrange(len(data) // (4 * KiB)) * 4 * KiB
        assert m.fs.read(fh, offset, 4 * KiB) == data[offset : offset + 4 * KiB]


def test_a_blob_read_at_random_is_fetched_whole_into_the_data_cache(make_fs) -> None:  # type: ignore[no-untyped-def]
    """Each random read of a cold blob costs a GET; after ``FILL_AFTER`` of them the rest of the blob
    comes in whole parts in the background, each byte once, and every later read is local."""
    m = make_fs(**_options())
    data = _payload(4 * MiB + 123)
    m.put(BLOB, data)
    fh = m.fs.open(BLOB, os.O_RDONLY)
    m.driver.reset()
    _random_reads(m, fh, data, FILL_AFTER - 1)
    fills = m.fs._reading.fills
    assert fills.started == 0 and m.driver.count("read_range") == FILL_AFTER - 1  # one GET a read, no more
    _random_reads(m, fh, data, 1, seed=8)
    assert fills.started == 1
    assert fills.wait_idle(timeout=30)
    assert (fills.completed, fills.stopped) == (1, 0)
    counts = m.fs.snapshot()["data_cache"]  # what the metrics export
    assert (counts["fills_started"], counts["fills_completed"], counts["fills_stopped"]) == (1, 1, 0)
    fill_gets = [(offset, length) for _, offset, length in m.driver.ranges[FILL_AFTER:]]
    assert max(length for _, length in fill_gets) == PART  # whole parts
    assert sum(length for _, length in fill_gets) == len(data)  # every byte once (the 4 KiB reads stored none)
    m.fs._datacache.drain()
    m.driver.reset()
    _random_reads(m, fh, data, 200, seed=9)
    m.fs.release(fh)
    assert m.read_file(BLOB) == data
    assert m.driver.count("read_range") == 0  # all of it from the data cache


def test_a_sequential_reader_and_a_blob_over_the_limit_start_no_fill(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(**_options(random_fill_max=2 * MiB))
    small, large = _payload(1 * MiB + 5, seed=2), _payload(3 * MiB, seed=3)
    other = BLOB.replace("ab" * 32, "cd" * 32)
    m.put(BLOB, small)
    m.put(other, large)
    assert m.read_file(BLOB, chunk=4 * KiB) == small  # 257 sequential reads
    fh = m.fs.open(other, os.O_RDONLY)
    _random_reads(m, fh, large, 2 * FILL_AFTER)
    m.fs.release(fh)
    assert m.fs._reading.fills.started == 0


def test_a_fill_takes_its_parts_from_the_readahead_budget(make_fs) -> None:  # type: ignore[no-untyped-def]
    """At most ``FILL_PARTS`` parts in flight, inside the readahead budget; a budget too small for
    one part ends the fill at once, and the reads go on, one GET each."""
    m = make_fs(**_options())
    data = _payload(8 * MiB)
    m.put(BLOB, data)
    fh = m.fs.open(BLOB, os.O_RDONLY)
    _random_reads(m, fh, data, FILL_AFTER)
    fills = m.fs._reading.fills
    assert fills.wait_idle(timeout=30) and fills.completed == 1
    budget = m.fs._reading.budget
    assert budget.used == 0 and PART <= budget.peak <= min(FILL_PARTS * PART, budget.total)
    m.fs.release(fh)

    tight = make_fs(**_options(readahead_min=64 * KiB, readahead_max=128 * KiB, readahead_budget=128 * KiB))
    tight.put(BLOB, data)
    fh = tight.fs.open(BLOB, os.O_RDONLY)
    tight.driver.reset()
    _random_reads(tight, fh, data, 2 * FILL_AFTER)
    fills = tight.fs._reading.fills
    assert fills.wait_idle(timeout=30)
    assert (fills.started, fills.completed, fills.stopped) == (1, 0, 1)
    assert tight.driver.count("read_range") == 2 * FILL_AFTER and tight.fs._reading.budget.peak == 0
    tight.fs.release(fh)


def test_a_failed_get_ends_the_fill_and_the_reads_go_on(make_fs) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(**_options())
    data = _payload(4 * MiB)
    m.put(BLOB, data)
    fh = m.fs.open(BLOB, os.O_RDONLY)
    m.faulty.fail("read_range", DriverError("injected", "faulty"), after=FILL_AFTER, path=BLOB)
    _random_reads(m, fh, data, FILL_AFTER)
    fills = m.fs._reading.fills
    assert fills.wait_idle(timeout=30)
    assert (fills.completed, fills.stopped) == (0, 1)
    fetched = sum(length for _, _, length in m.driver.ranges) - FILL_AFTER * 4 * KiB
    assert fetched <= FILL_PARTS * PART  # the parts already in flight, nothing after the failure
    _random_reads(m, fh, data, 50, seed=11)  # right bytes, from the cache or the bucket
    m.fs.release(fh)


def test_one_fill_at_a_time_on_half_the_pool_and_a_refused_handle_asks_again(make_fs, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A fill uses at most half of ``read_parallelism`` (the pool also serves readahead and listings).
    While one runs, a second blob's fill does not start; its handle asks again after ``FILL_AFTER``
    more random reads."""
    m = make_fs(**_options(read_parallelism=4))
    first, second = _payload(2 * MiB, seed=4), _payload(2 * MiB, seed=5)
    other = BLOB.replace("ab" * 32, "ef" * 32)
    m.put(BLOB, first)
    m.put(other, second)
    gate = threading.Event()
    reading = m.fs._reading
    real = reading._fetcher

    def held(key, size, etag):  # type: ignore[no-untyped-def]
        fetch = real(key, size, etag)

        def maybe_held(offset: int, length: int):  # type: ignore[no-untyped-def]
            if key == BLOB and threading.current_thread().name.startswith("s3regfs-io"):
                assert gate.wait(30)  # the first blob's fill parts wait; the handles' own reads do not
            return fetch(offset, length)

        return maybe_held

    monkeypatch.setattr(reading, "_fetcher", held)
    fa, fb = m.fs.open(BLOB, os.O_RDONLY), m.fs.open(other, os.O_RDONLY)
    _random_reads(m, fa, first, FILL_AFTER)
    assert reading.fills.started == 1 and reading.budget.used == 2 * PART  # two parts: half of four threads
    _random_reads(m, fb, second, FILL_AFTER)
    assert reading.fills.started == 1  # one at a time
    gate.set()
    assert reading.fills.wait_idle(timeout=30)
    _random_reads(m, fb, second, FILL_AFTER - 1, seed=12)
    assert reading.fills.started == 1
    _random_reads(m, fb, second, 1, seed=13)
    assert reading.fills.started == 2  # asked again after FILL_AFTER more
    assert reading.fills.wait_idle(timeout=30) and reading.fills.completed == 2
    m.fs.release(fa)
    m.fs.release(fb)


def test_an_unexpected_error_in_a_fill_fails_no_read_and_blocks_no_later_fill(make_fs, monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    m = make_fs(**_options())
    data = _payload(2 * MiB, seed=6)
    other = BLOB.replace("ab" * 32, "12" * 32)
    m.put(BLOB, data)
    m.put(other, data)
    cache = m.fs._datacache

    def broken(*args: object) -> bool:
        raise RuntimeError("a bug")

    monkeypatch.setattr(cache, "holds", broken)
    fh = m.fs.open(BLOB, os.O_RDONLY)
    _random_reads(m, fh, data, FILL_AFTER)  # the read that starts the fill still gets its bytes
    fills = m.fs._reading.fills
    assert (fills.started, fills.stopped) == (1, 1) and fills.wait_idle(timeout=1)
    assert "fill of " + BLOB + " stopped" in caplog.text
    monkeypatch.undo()
    fh2 = m.fs.open(other, os.O_RDONLY)
    _random_reads(m, fh2, data, FILL_AFTER)
    assert fills.wait_idle(timeout=30) and fills.completed == 1
    m.fs.release(fh)
    m.fs.release(fh2)


def test_a_reader_mostly_served_by_its_window_starts_no_fill(make_fs) -> None:  # type: ignore[no-untyped-def]
    """Jumps among mostly sequential reads (a kernel readahead that outruns the window) are not
    random reading: no fill until most of the handle's reads are random."""
    m = make_fs(**_options())
    data = _payload(16 * MiB, seed=7)
    m.put(BLOB, data)
    fh = m.fs.open(BLOB, os.O_RDONLY)
    fills = m.fs._reading.fills
    position = 0
    for _ in range(FILL_AFTER + 2):  # a jump past the window, then sequential reads from there
        position += 3 * MiB // 2
        for _ in range(3):
            assert m.fs.read(fh, position, 16 * KiB) == data[position : position + 16 * KiB]
            position += 16 * KiB
    assert m.fs._handles.get(fh).reader.direct_reads >= FILL_AFTER  # type: ignore[union-attr]
    assert fills.started == 0
    _random_reads(m, fh, data, 4 * FILL_AFTER)  # now most of its reads are random
    assert fills.started == 1
    m.fs.release(fh)


def test_a_distant_store_starts_the_fill_after_fewer_random_reads(make_fs) -> None:  # type: ignore[no-untyped-def]
    """Random reads that waited ``FILL_WAIT`` in all (here 20 ms each, a round trip to a distant store)
    start the fill after ``FILL_SOONER`` of them instead of ``FILL_AFTER``."""
    m = make_fs(**_options())
    data = _payload(4 * MiB)
    m.put(BLOB, data)
    inner = m.faulty.read_range

    def distant(path: str, offset: int, length: int, etag: str | None = None) -> bytes:
        time.sleep(0.02)  # the store's latency, not a synchronisation
        return inner(path, offset, length, etag)

    m.faulty.read_range = distant  # type: ignore[method-assign]
    fh = m.fs.open(BLOB, os.O_RDONLY)
    fills = m.fs._reading.fills
    _random_reads(m, fh, data, FILL_SOONER - 1)
    assert fills.started == 0
    _random_reads(m, fh, data, 1, seed=8)
    assert fills.started == 1
    assert fills.wait_idle(timeout=30) and fills.completed == 1
    m.fs.release(fh)
