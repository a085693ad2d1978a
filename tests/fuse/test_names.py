"""Names the storage driver cannot represent: one clear errno each, and the daemon keeps serving.

The driver's path rule allows ``[A-Za-z0-9._-]`` per component; creating
anything else is ``EINVAL`` (with a log line naming the rule), a component
over 255 bytes is ``ENAMETOOLONG``, and looking such a name up is ``ENOENT``
(it cannot exist in the bucket).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from tests.support.mounts import Mount

BAD_NAMES = {
    "space": b"with space",
    "control": b"ctl\x01char",
    "newline": b"new\nline",
    "invalid-utf8": b"bad\xff\xfe",
    "non-ascii": "caf\u00e9".encode(),
    "colon": b"sha256:abc",
    "tilde": b"backup~",
}


def _errno_of(call: object, *args: object) -> int:
    with pytest.raises(OSError) as exc:
        call(*args)  # type: ignore[operator]
    return exc.value.errno


@pytest.mark.parametrize("name", BAD_NAMES.values(), ids=BAD_NAMES.keys())
def test_creating_an_unrepresentable_name_is_einval(mnt: Path, name: bytes) -> None:
    target = os.fsencode(mnt) + b"/" + name
    assert _errno_of(os.open, target, os.O_CREAT | os.O_WRONLY, 0o644) == errno.EINVAL
    assert _errno_of(os.mkdir, target) == errno.EINVAL
    (mnt / "good").write_bytes(b"1")
    assert _errno_of(os.rename, os.fsencode(mnt / "good"), target) == errno.EINVAL
    assert _errno_of(os.stat, target) == errno.ENOENT
    assert os.listdir(mnt) == ["good"]


def test_a_component_over_255_bytes_is_enametoolong(mnt: Path) -> None:
    longest = "n" * 255
    (mnt / longest).write_bytes(b"ok")
    assert (mnt / longest).read_bytes() == b"ok"
    too_long = os.fsencode(mnt) + b"/" + b"n" * 256
    assert _errno_of(os.open, too_long, os.O_CREAT | os.O_WRONLY, 0o644) == errno.ENAMETOOLONG
    assert _errno_of(os.mkdir, too_long) == errno.ENAMETOOLONG
    assert os.listdir(mnt) == [longest]


def test_the_daemon_keeps_serving_after_bad_names(mnt: Path, shared_mount: Mount) -> None:
    for name in [*BAD_NAMES.values(), b"x" * 300]:
        with pytest.raises(OSError):
            os.open(os.fsencode(mnt) + b"/" + name, os.O_CREAT | os.O_WRONLY, 0o644)
    (mnt / "after").write_bytes(b"still here")
    assert (mnt / "after").read_bytes() == b"still here"
    assert shared_mount.proc.poll() is None
    assert "Traceback" not in shared_mount.log()


def test_the_log_names_the_rule(mnt: Path, shared_mount: Mount) -> None:
    with pytest.raises(OSError):
        os.mkdir(mnt / "has space")
    assert "has space" in shared_mount.log()
