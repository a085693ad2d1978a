"""The upload gate: how many uploads hold memory at once (docs/SEMANTICS.md "Memory")."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from s3regfs.fs.uploadgate import UploadGate
from tests.fs.conftest import Mount

MiB = 1024 * 1024


def _close_in_thread(gate: UploadGate) -> tuple[threading.Event, threading.Thread]:
    """A close's multipart upload on its own thread; the event is set once it holds a slot."""
    entered = threading.Event()

    def close_upload() -> None:
        with gate.multipart():
            entered.set()

    thread = threading.Thread(target=close_upload)
    thread.start()
    return entered, thread


def test_streams_take_at_most_their_slots_and_leave_one_for_closes() -> None:
    gate = UploadGate(streams=2, put_bytes=8)
    assert gate.try_stream() and gate.try_stream()
    assert not gate.try_stream()  # a third file stages on disk
    entered, thread = _close_in_thread(gate)
    assert entered.wait(10)  # the slot streams can never take: a close is not stuck behind slow streams
    thread.join(10)
    gate.end_stream()
    gate.end_stream()
    assert gate.in_use() == (0, 0, 0)


def test_a_close_waits_while_every_multipart_slot_is_taken() -> None:
    gate = UploadGate(streams=1, put_bytes=8)
    assert gate.try_stream()
    holder = gate.multipart()
    holder.__enter__()
    entered, thread = _close_in_thread(gate)
    assert not entered.wait(0.2)
    gate.end_stream()
    assert entered.wait(10)
    thread.join(10)
    holder.__exit__(None, None, None)
    assert gate.in_use() == (0, 0, 0)


def test_single_puts_share_a_byte_budget_and_a_larger_one_goes_alone() -> None:
    gate = UploadGate(streams=0, put_bytes=10)
    assert not gate.try_stream()  # max_streaming_writers=0: no streaming
    with gate.put(6):
        entered = threading.Event()

        def second() -> None:
            with gate.put(6):
                entered.set()

        thread = threading.Thread(target=second)
        thread.start()
        assert not entered.wait(0.2)
    assert entered.wait(10)
    thread.join(10)
    with gate.put(100):  # larger than the whole budget: admitted alone
        assert gate.in_use() == (0, 0, 10)


def test_concurrent_writers_never_hold_more_uploads_than_the_gate_allows(
    make_fs: Callable[..., Mount],
) -> None:
    m = make_fs(stream_threshold=256 * 1024, max_streaming_writers=2)
    gate = m.fs._ctx.gate
    peak = [0, 0]
    lock = threading.Lock()
    real_writer = m.driver.writer

    def watching_writer(path: str, append: bool = False):  # type: ignore[no-untyped-def]
        with lock:
            streaming, multipart, _ = gate.in_use()
            peak[0] = max(peak[0], streaming)
            peak[1] = max(peak[1], multipart)
        return real_writer(path, append)

    m.driver.writer = watching_writer  # type: ignore[method-assign]
    payload = os.urandom(MiB)

    def write(i: int) -> None:
        fh = m.fs.create(f"/f{i}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        for k in range(4):
            m.fs.write(fh, k * len(payload), payload)
        m.fs.flush(fh)
        m.fs.release(fh)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert peak[0] <= 2 and peak[1] <= 3
    for i in range(12):
        assert m.store.get_content(f"/f{i}") == payload * 4
    assert gate.in_use() == (0, 0, 0)
