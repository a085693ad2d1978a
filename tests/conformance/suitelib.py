"""Helpers of the driver conformance suite (port of distribution's ``testsuites`` helpers).

Owns the random names and contents the cases use, the cleanup helper and the
error assertion.  Differences from upstream, on purpose:

* :func:`random_contents` returns genuinely distinct random bytes on every
  call (upstream returns prefixes of one fixed buffer, which hides offset and
  append bugs);
* :func:`random_filename` uses the [2.8] separator set ``._-`` (v3: ``-``
  only), so that names sorting before ``/`` are exercised.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from s3regfs.driver import FileWriter, PathNotFoundError, StorageDriver

MiB = 1024 * 1024
_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
_SEPARATORS = "._-"
_rng = random.Random()


@dataclass
class DriverCase:
    """A driver under test and what the suite needs to know about it."""

    id: str
    driver: StorageDriver
    family: str  # walk order: "fallback", "s3" (byte key order) or "s3-tree" (SeaweedFS key order)
    bucket: str | None = None
    root: str = ""  # the s3 rootdirectory
    client: Any = None  # a raw boto3 client for the bucket (s3 chains only)
    redirect_base: str = ""  # where a method-blind redirecting middleware points (cloudfront)
    cleanups: list[Callable[[], None]] = field(default_factory=list)


def seed(value: int) -> None:
    """Seed the name generator (the suite prints the seed of each test)."""
    _rng.seed(value)


def random_filename(length: int) -> str:
    """``length`` characters of ``[a-z0-9]`` with separators, never first, last or doubled."""
    chars: list[str] = []
    for i in range(length):
        last = i == length - 1
        prev_sep = bool(chars) and chars[-1] in _SEPARATORS
        if i > 0 and not last and not prev_sep and _rng.random() < 0.25:
            chars.append(_rng.choice(_SEPARATORS))
        else:
            chars.append(_rng.choice(_ALNUM))
    return "".join(chars)


def random_path(length: int = 32) -> str:
    """An absolute path of exactly ``length`` characters made of random filename components."""
    path = ""
    while len(path) < length:
        remaining = length - len(path)
        if remaining == 1:  # a slash now would leave an empty last component
            path += _rng.choice(_ALNUM)
            continue
        chunk = _rng.randint(1, remaining - 1)
        path += "/" + random_filename(chunk)
    return path


def random_name_between(low: int, high: int) -> str:
    """A random filename with a length in ``[low, high]``."""
    return random_filename(_rng.randint(low, high))


def random_contents(size: int) -> bytes:
    """``size`` fresh random bytes (distinct on every call)."""
    return os.urandom(size)


def first_part(path: str) -> str:
    """The top-level component: ``/abc/def`` → ``/abc``."""
    return "/" + path.lstrip("/").split("/", 1)[0]


def delete_path(driver: StorageDriver, path: str) -> None:
    """Delete ``path`` (missing is fine); then nothing may be listed or walked under it."""
    try:
        driver.delete(path)
    except PathNotFoundError:
        pass
    try:
        listed = driver.list(path)
    except PathNotFoundError:
        listed = []
    try:
        walked = walk_paths(driver, path)
    except PathNotFoundError:
        walked = []
    assert (listed, walked) == ([], []), f"delete({path}) left {listed or walked}"


def read_all(stream: Any, chunk: int = MiB) -> bytes:
    """Everything ``stream`` yields until EOF; the stream is closed."""
    parts = []
    try:
        while True:
            data = stream.read(chunk)
            if not data:
                return b"".join(parts)
            parts.append(data)
    finally:
        stream.close()


def write_all(writer: FileWriter, data: bytes, chunk: int = 256 * 1024) -> int:
    """Feed ``data`` to ``writer`` in ``chunk``-sized writes; return the bytes accepted."""
    view = memoryview(data)
    written = 0
    for start in range(0, len(data), chunk):
        written += writer.write(view[start : start + chunk])
    return written


def assert_driver_error(exc: BaseException, cls: type[BaseException], driver: StorageDriver) -> None:
    """The error is exactly of type ``cls`` and its text names the driver (upstream's 3 checks)."""
    assert type(exc) is cls, f"expected {cls.__name__}, got {type(exc).__name__}: {exc}"
    assert driver.name, "driver has no name"
    assert driver.name in str(exc), f"{driver.name!r} not in {str(exc)!r}"


def walk_paths(driver: StorageDriver, root: str, **kwargs: Any) -> list[str]:
    """The paths a walk visits, in order."""
    seen: list[str] = []
    driver.walk(root, lambda info: seen.append(info.path), **kwargs)
    return seen


def poll(predicate: Any, timeout: float, interval: float = 0.05) -> bool:
    """Call ``predicate`` until it is true or ``timeout`` seconds pass; return the last result."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def put_all(driver: StorageDriver, paths: Iterable[str], content: bytes | None = None) -> None:
    """PutContent each path (its own path as content unless ``content`` is given)."""
    for path in paths:
        driver.put_content(path, path.encode() if content is None else content)
