"""``x-systemd.automount``: an autofs mount at the mount point is not "already mounted".

systemd's automount unit puts an autofs mount on the mount point; the first access triggers the mount unit,
which runs ``mount -t fuse.s3regfs`` on top of that autofs mount. This machine's kernel has no autofs
(``CONFIG_AUTOFS_FS`` is not set, no module can be loaded), so no real autofs mount can be made here: the
decision is tested on the mountinfo lines systemd's automount produces, fed to the parser through
``MOUNTINFO`` (the rest of the file is this machine's real ``/proc/self/mountinfo``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from s3regfs import exitcodes, mountpoint
from s3regfs.errors import UserError

# Captured from a Debian 12 host (systemd 252) with the README's fstab line
# "/etc/s3regfs/registry.yml /mnt/registry fuse.s3regfs ro,allow_other,_netdev,nofail,x-systemd.automount 0 0":
# the automount point before the first access, then the mount the automount triggered, on top of it.
AUTOFS_LINE = (
    "49 29 0:42 / {path} rw,relatime shared:27 - autofs systemd-1 "
    "rw,fd=50,pgrp=1,timeout=0,minproto=5,maxproto=5,direct,pipe_ino=20467"
)
TRIGGERED_LINE = (
    "512 49 0:88 / {path} ro,nosuid,nodev,relatime shared:275 - fuse.s3regfs /etc/s3regfs/registry.yml "
    "ro,user_id=0,group_id=0,allow_other"
)


def escaped(path: Path) -> str:
    """A path as mountinfo writes it (space, tab, newline and backslash as octal escapes)."""
    return "".join(f"\\{ord(c):03o}" if c in " \t\n\\" else c for c in str(path))


@pytest.fixture
def mountinfo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A mount point (with a space in its name) and a mountinfo file: this machine's real one, to append to."""
    point = tmp_path / "mnt registry"
    point.mkdir()
    info = tmp_path / "mountinfo"
    info.write_text(Path("/proc/self/mountinfo").read_text())
    monkeypatch.setattr(mountpoint, "MOUNTINFO", str(info))
    if not os.path.exists("/dev/fuse"):
        pytest.skip("/dev/fuse is missing (prepare checks FUSE first)")
    return point, info


def add(info: Path, *lines: str) -> None:
    with info.open("a") as f:
        f.writelines(line + "\n" for line in lines)


def test_an_automount_point_is_mounted_on_without_listing_it(
    mountinfo: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    point, info = mountinfo
    add(info, AUTOFS_LINE.format(path=escaped(point)))
    assert mountpoint.mounted_at(str(point)) == mountpoint.MountEntry(str(point), "autofs", "systemd-1", "0:42")

    def no_listing(path: object) -> None:  # listing an autofs trigger waits for the mount being made
        raise AssertionError(f"the automount point {path} was listed")

    monkeypatch.setattr(os, "scandir", no_listing)
    assert mountpoint.prepare(str(point)) == str(point)


def test_an_automount_point_that_already_triggered_its_mount_is_in_use(mountinfo: tuple[Path, Path]) -> None:
    point, info = mountinfo
    add(info, AUTOFS_LINE.format(path=escaped(point)), TRIGGERED_LINE.format(path=escaped(point)))

    with pytest.raises(UserError) as refused:
        mountpoint.prepare(str(point))
    assert refused.value.exit_code == exitcodes.MOUNT
    assert f"{point} is already a mount point (fuse.s3regfs from /etc/s3regfs/registry.yml)" in refused.value.msg


def test_any_other_mount_at_the_mount_point_is_still_refused(mountinfo: tuple[Path, Path]) -> None:
    point, info = mountinfo
    add(info, f"600 29 0:99 / {escaped(point)} rw,relatime shared:300 - tmpfs tmpfs rw,size=1024k")

    with pytest.raises(UserError) as refused:
        mountpoint.prepare(str(point))
    assert "already a mount point (tmpfs from tmpfs)" in refused.value.msg
