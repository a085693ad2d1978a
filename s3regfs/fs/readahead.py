"""Reads of committed objects: sequential detection, a growing readahead window, a byte budget.

Owns :class:`ByteBudget` (one per mount: the bytes all readahead windows may hold together)
and :class:`ReadStream` (one per open handle reading from the bucket).

* A read at the position where the previous one ended (or at 0 for the first read) is
  sequential: the stream fetches ahead, up to a window that starts at ``readahead_min`` and
  grows ``GROWTH``-fold at each refill up to ``readahead_max``, or to this stream's fair share of the
  budget when several files are read sequentially at once (budget / sequential streams).  The window is fetched as parallel ranged
  requests of at most ``read_part_size`` on the shared thread pool.  A window of two parts or more
  asks only for whole parts (a shorter one only at the end of the file) and is refilled as soon as
  the reader is one part into it, so at least window − part bytes are always fetched or in flight
  ahead of the reader (a refill at half the window left the fetch idle while the reader caught up,
  and a part cut to the window's edge cost a round trip for a few hundred KiB); a smaller window
  (the budget's share of many readers) is topped up to its size when half of it is left, which
  holds less memory for the same throughput there.  Reads that fall inside
  the fetched window are served from it in any order (the kernel sends readahead requests
  from several threads), as views of the fetched parts: the FUSE adapter copies them once, into
  libfuse's buffer.
* Any other read is random: it fetches exactly the bytes asked for, inline, and does not
  disturb the window.
* Every chunk takes its bytes from the :class:`ByteBudget` before it is requested and gives
  them back when the reader has moved past it (or the handle closes); when the budget is
  exhausted, reads fall back to direct fetches of exactly what was asked.
* ``align``: chunk ends are rounded up to a multiple of it (the data cache's block size, so
  every block of an immutable file arrives whole and can be cached).
* ``fetch(offset, length)`` must return exactly ``length`` bytes or raise (the caller's fetch
  turns a short read in the middle of a file into ``EIO``): wrong bytes are never returned.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

Fetch = Callable[[int, int], bytes | memoryview]

GROWTH = 8
"""Factor by which a sequential reader's window grows at each refill (1, 8, 64 MiB at the defaults)."""


class ByteBudget:
    """A counter of bytes that readahead may hold, shared by every open file."""

    def __init__(self, total: int) -> None:
        self.total = total
        self._used = 0
        self._peak = 0
        self._streams = 0
        self._lock = threading.Lock()

    def join(self) -> None:
        """A stream became sequential: it takes part in the fair share."""
        with self._lock:
            self._streams += 1

    def leave(self) -> None:
        with self._lock:
            self._streams -= 1

    def share(self) -> int:
        """The window each sequential stream may grow to: the budget split between them."""
        with self._lock:
            return self.total // max(1, self._streams)

    def try_acquire(self, n: int) -> bool:
        with self._lock:
            if self._used + n > self.total:
                return False
            self._used += n
            self._peak = max(self._peak, self._used)
            return True

    def release(self, n: int) -> None:
        with self._lock:
            self._used -= n

    @property
    def used(self) -> int:
        with self._lock:
            return self._used

    @property
    def peak(self) -> int:
        with self._lock:
            return self._peak


@dataclass
class _Chunk:
    start: int
    end: int
    future: Future[bytes | memoryview]


class ReadStream:
    """The read state of one handle on one committed object of known size."""

    def __init__(
        self,
        fetch: Fetch,
        size: int,
        pool: ThreadPoolExecutor,
        budget: ByteBudget,
        minimum: int,
        maximum: int,
        part: int,
        align: int = 1,
    ) -> None:
        self._fetch = fetch
        self._align = max(1, align)
        self.size = size
        self._pool = pool
        self._budget = budget
        self._min = max(1, minimum)
        self._max = max(self._min, maximum)
        self._part = max(1, part)
        self._lock = threading.Lock()
        self._chunks: deque[_Chunk] = deque()
        self._fetched_to = 0
        self._expected = 0
        self._window = 0
        self.reads = 0
        self.direct_reads = 0
        self.direct_wait = 0.0  # seconds the direct reads waited for their fetches
        self.fill_at = 0  # direct reads after which the read path asks for a fill again (fs/blobfill.py)

    @property
    def window(self) -> int:
        return self._window

    @window.setter
    def window(self, value: int) -> None:
        if (value > 0) != (self._window > 0):
            (self._budget.join if value > 0 else self._budget.leave)()
        self._window = value

    @property
    def fetched_to(self) -> int:
        """The end of what the window has fetched or has in flight."""
        with self._lock:
            return self._fetched_to

    # -- public --------------------------------------------------------------------------------

    def read(self, offset: int, length: int) -> bytes | memoryview:
        """The bytes at ``offset``: a view of the fetched part when one part holds them (no copy)."""
        if offset >= self.size or length <= 0:
            return b""
        self.reads += 1
        end = min(self.size, offset + length)
        with self._lock:
            in_window = bool(self._chunks) and self._chunks[0].start <= offset <= self._fetched_to
            if in_window or offset == self._expected:
                if not in_window:
                    self._restart(offset)
                    self._submit_until(min(self.size, max(end, offset + self.window)))
                else:
                    self._submit_until(end)
                if self._covered(offset, end):
                    return self._serve(offset, end)
            elif not self._chunks or offset >= self._expected:
                # a jump: forget the window (a late request behind it keeps it)
                self._drop_all()
                self.window = 0
        self.direct_reads += 1
        asked = time.monotonic()
        data = self._fetch(offset, end - offset)
        self.direct_wait += time.monotonic() - asked
        with self._lock:
            if offset >= self._expected or not self._chunks:
                self._expected = end
        return data

    def close(self) -> None:
        with self._lock:
            self._drop_all()
            self.window = 0

    # -- window --------------------------------------------------------------------------------

    def _covered(self, offset: int, end: int) -> bool:
        return bool(self._chunks) and self._chunks[0].start <= offset and end <= self._fetched_to

    def _restart(self, offset: int) -> None:
        self._drop_all()
        self._fetched_to = offset
        self.window = self._min if self.window == 0 else self.window

    def _serve(self, offset: int, end: int) -> bytes | memoryview:
        while self._chunks and self._chunks[0].end <= offset:
            self._drop(self._chunks.popleft())
        parts: list[memoryview] = []
        try:
            for chunk in self._chunks:
                if chunk.start >= end:
                    break
                data = memoryview(chunk.future.result())
                parts.append(data[max(offset, chunk.start) - chunk.start : min(end, chunk.end) - chunk.start])
        except BaseException:
            self._drop_all()
            self.window = 0
            raise
        self._expected = max(self._expected, end)
        low = self.window - self._part if self._whole() else self.window // 2
        if self._fetched_to - end < low and self._fetched_to < self.size:
            cap = min(self._max, max(self._min, self._budget.share()))
            self.window = max(self._min, min(self.window * GROWTH, cap))
            self._submit_until(min(self.size, end + self.window), whole=self._whole())
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _whole(self) -> bool:
        """A window of two parts or more is kept full with whole parts (a smaller one, the budget's
        share of many readers, is topped up to its size when half of it is left)."""
        return self.window >= 2 * self._part

    def _submit_until(self, target: int, whole: bool = False) -> None:
        while self._fetched_to < target:
            start = self._fetched_to
            stop = start + (self._part if whole else min(self._part, target - start))
            stop = min(self.size, -(-stop // self._align) * self._align)  # whole cache blocks
            if whole and stop > target:
                return  # a whole part past the window waits for the next refill
            length = stop - start
            if not self._budget.try_acquire(length):
                return
            future = self._pool.submit(self._fetch, start, length)
            self._chunks.append(_Chunk(start, start + length, future))
            self._fetched_to = start + length

    def _drop(self, chunk: _Chunk) -> None:
        cost = chunk.end - chunk.start
        chunk.future.cancel()
        chunk.future.add_done_callback(lambda _f: self._budget.release(cost))

    def _drop_all(self) -> None:
        while self._chunks:
            self._drop(self._chunks.popleft())
        self._fetched_to = self._expected
