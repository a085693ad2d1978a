"""UploadGate: what bounds the memory of writes, however many files are written at once.

Owns the admission of uploads (docs/SEMANTICS.md "Memory"):

* a **multipart upload** (a file streaming while it is written, or a large file uploaded from its
  local copy at close) holds the driver writer's part buffers, about ``chunksize × (partsinflight +
  1)`` bytes on the s3 driver.  At most ``streams + 1`` run at once: at most ``streams`` files stream
  (a file that finds no free streaming slot stages on disk and uploads at close), and the one slot
  streams can never take keeps closes moving while slow writers hold the streaming slots.  A close
  waits for a slot; every upload holding one ends within the driver's deadline.
* a **single PUT** (a file smaller than ``stream_threshold`` at close) holds the file's bytes:
  together at most ``put_bytes`` (a larger file still goes alone).

Everything waits in arrival order of the condition variable; no lock is held while uploading.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class UploadGate:
    """Admission of uploads by the memory they hold (thread-safe)."""

    def __init__(self, streams: int, put_bytes: int) -> None:
        self.streams = max(0, streams)
        self.slots = self.streams + 1
        self.put_bytes = max(1, put_bytes)
        self._cond = threading.Condition()
        self._streaming = 0
        self._multipart = 0
        self._put_used = 0

    # -- multipart uploads ----------------------------------------------------------------

    def try_stream(self) -> bool:
        """Take a streaming slot if one is free (never waits)."""
        with self._cond:
            if self._streaming >= self.streams or self._multipart >= self.slots:
                return False
            self._streaming += 1
            self._multipart += 1
            return True

    def end_stream(self) -> None:
        self._end(streaming=True)

    @contextmanager
    def multipart(self) -> Iterator[None]:
        """Hold a multipart slot for an upload at close (waits for one)."""
        with self._cond:
            while self._multipart >= self.slots:
                self._cond.wait()
            self._multipart += 1
        try:
            yield
        finally:
            self._end(streaming=False)

    def _end(self, streaming: bool) -> None:
        with self._cond:
            if streaming:
                self._streaming -= 1
            self._multipart -= 1
            self._cond.notify_all()

    # -- single PUTs ----------------------------------------------------------------------

    @contextmanager
    def put(self, size: int) -> Iterator[None]:
        """Hold ``size`` bytes of the single-PUT budget (waits until they fit)."""
        need = min(size, self.put_bytes)
        with self._cond:
            while self._put_used + need > self.put_bytes:
                self._cond.wait()
            self._put_used += need
        try:
            yield
        finally:
            with self._cond:
                self._put_used -= need
                self._cond.notify_all()

    # -- observation ------------------------------------------------------------------------

    def in_use(self) -> tuple[int, int, int]:
        """(files streaming, multipart uploads, single-PUT bytes) right now."""
        with self._cond:
            return self._streaming, self._multipart, self._put_used
