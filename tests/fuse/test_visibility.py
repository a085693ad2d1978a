"""Another writer's changes show within 5 s at the default options (docs/SEMANTICS.md "Caching and
consistency"): two mounts of one SeaweedFS bucket; B has listed the directory before A changes it."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from tests.support import mounts
from tests.support.mounts import Mount

BOUND = 5.0
POLL = 0.05


def _visible_after(check: Callable[[], bool], since: float) -> float:
    """Seconds from ``since`` until ``check()`` holds (polled; fails past the bound plus one poll)."""
    while not check():
        assert time.monotonic() - since < BOUND + 0.5, f"not visible within {BOUND:g} s"
        time.sleep(POLL)
    return time.monotonic() - since


def _exists(path: os.PathLike[str]) -> bool:
    try:
        os.stat(path)
    except FileNotFoundError:
        return False
    return True


def test_another_mounts_new_and_deleted_files_show_within_five_seconds(
    mount_factory: Callable[..., Mount], s3_driver_params: dict[str, Any]
) -> None:
    options, env = mounts.s3_options(s3_driver_params)
    a = mount_factory("s3", options=options, env=env)
    b = mount_factory("s3", options=options, env=env)
    (a.path / "d").mkdir()
    (a.path / "d" / "old").write_bytes(b"old")
    assert os.listdir(b.path / "d") == ["old"] and not _exists(b.path / "d" / "new")  # B has looked

    (a.path / "d" / "new").write_bytes(b"new")
    written = time.monotonic()
    shown = _visible_after(lambda: sorted(os.listdir(b.path / "d")) == ["new", "old"], written)
    stat_shown = _visible_after(lambda: _exists(b.path / "d" / "new"), written)

    os.unlink(a.path / "d" / "old")
    deleted = time.monotonic()
    gone = _visible_after(lambda: os.listdir(b.path / "d") == ["new"], deleted)
    stat_gone = _visible_after(lambda: not _exists(b.path / "d" / "old"), deleted)
    print(f"new: ls {shown:.2f} s, stat {stat_shown:.2f} s; deleted: ls {gone:.2f} s, stat {stat_gone:.2f} s")
    assert max(shown, stat_shown, gone, stat_gone) <= BOUND + 0.2  # the slack of polling every 50 ms
