"""Ordinary tools on a real mount: ls, find, cp -a, rsync -a, tar, sha256sum, editors' saves.

Each test works in its own directory of one shared ``inmemory`` mount and
asserts what the user sees: exit status, no error output, and the same bytes
back.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.support.mounts import run_tool, tree_digest


def _make_tree(root: Path) -> None:
    """A small registry-like tree with names the driver can represent."""
    (root / "blobs" / "sha256" / "ab").mkdir(parents=True)
    (root / "repositories" / "app" / "_manifests").mkdir(parents=True)
    (root / "blobs" / "sha256" / "ab" / "data").write_bytes(os.urandom(300_000))
    (root / "repositories" / "app" / "_manifests" / "link").write_text("sha256:ab\n")
    (root / "empty.txt").write_bytes(b"")
    (root / "small.bin").write_bytes(bytes(range(256)) * 4)


def test_ls_l_shows_size_mode_and_owner_of_each_entry(mnt: Path) -> None:
    (mnt / "file.txt").write_bytes(b"x" * 1234)
    (mnt / "sub").mkdir()
    lines = run_tool(["ls", "-ln", str(mnt)]).stdout.splitlines()[1:]
    fields = {line.split()[-1]: line.split() for line in lines}
    assert fields["file.txt"][0] == "-rw-r--r--" and fields["file.txt"][4] == "1234"
    assert fields["sub"][0] == "drwxr-xr-x"
    assert {f[2] for f in fields.values()} == {str(os.getuid())}
    assert {f[3] for f in fields.values()} == {str(os.getgid())}


def test_ls_l_asks_for_acls_and_security_labels_once_not_for_every_file(mnt: Path, tmp_path: Path) -> None:
    """``ls -l`` probes ``security.selinux`` and ``system.posix_acl_access`` of every entry, each a FUSE
    request, unless the first answer is ENOTSUP: then it knows the device has none and stops asking."""
    many = mnt / "many"
    many.mkdir()
    for i in range(30):
        (many / f"f{i:02d}").write_bytes(b"x")
    trace = tmp_path / "ls.strace"
    listed = run_tool(["strace", "-f", "-qq", "-e", "trace=getxattr,lgetxattr", "-o", str(trace), "ls", "-l", str(many)])
    assert len(listed.stdout.splitlines()) == 31  # "total" and the 30 files
    calls = trace.read_text().splitlines()
    assert 0 < len(calls) <= 2 and all("EOPNOTSUPP" in call for call in calls), calls


def _find(root: Path) -> list[str]:
    """``find`` output as "type name" lines, with the size for files (directory sizes vary by filesystem)."""
    out = run_tool(["find", ".", "-mindepth", "1", "-printf", "%y %P %s\n"], cwd=root).stdout
    return sorted(line.rsplit(" ", 1)[0] if line.startswith("d ") else line for line in out.splitlines())


def test_find_lists_every_file_and_directory(mnt: Path, tmp_path: Path) -> None:
    _make_tree(mnt)
    _make_tree(tmp_path / "ref")
    assert _find(mnt) == _find(tmp_path / "ref")


def test_cp_a_copies_a_tree_in_and_out(mnt: Path, tmp_path: Path) -> None:
    _make_tree(tmp_path / "src")
    run_tool(["cp", "-a", str(tmp_path / "src"), str(mnt / "copy")])
    assert tree_digest(mnt / "copy") == tree_digest(tmp_path / "src")
    run_tool(["cp", "-a", str(mnt / "copy"), str(tmp_path / "back")])
    assert tree_digest(tmp_path / "back") == tree_digest(tmp_path / "src")


@pytest.mark.skipif(shutil.which("rsync") is None, reason="rsync is not installed (apt install rsync)")
def test_rsync_a_copies_then_updates_in_place_of_the_old_files(mnt: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    _make_tree(src)
    run_tool(["rsync", "-a", f"{src}/", f"{mnt / 'dst'}/"])
    assert tree_digest(mnt / "dst") == tree_digest(src)
    (src / "small.bin").write_bytes(b"changed" * 1000)
    (src / "new.txt").write_text("new\n")
    run_tool(["rsync", "-a", f"{src}/", f"{mnt / 'dst'}/"])
    assert tree_digest(mnt / "dst") == tree_digest(src)  # no leftover .small.bin.XXXXXX temp file


def test_tar_x_extracts_an_archive(mnt: Path, tmp_path: Path) -> None:
    _make_tree(tmp_path / "src")
    archive = tmp_path / "tree.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(tmp_path / "src", arcname="src")
    (mnt / "out").mkdir()
    run_tool(["tar", "-xf", str(archive), "-C", str(mnt / "out")])
    assert tree_digest(mnt / "out" / "src") == tree_digest(tmp_path / "src")


def test_tar_c_archives_what_the_mount_holds(mnt: Path, tmp_path: Path) -> None:
    _make_tree(mnt / "src")
    run_tool(["tar", "-cf", str(tmp_path / "out.tar"), "-C", str(mnt), "src"])
    with tarfile.open(tmp_path / "out.tar") as tar:
        tar.extractall(tmp_path / "x", filter="data")
    assert tree_digest(tmp_path / "x" / "src") == tree_digest(mnt / "src")


def test_sha256sum_of_a_written_file_matches(mnt: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    (mnt / "blob").write_bytes(data)
    line = run_tool(["sha256sum", str(mnt / "blob")]).stdout
    assert line.split()[0] == hashlib.sha256(data).hexdigest()


def test_editor_save_temp_then_rename_leaves_only_the_target(mnt: Path) -> None:
    target = mnt / "config.yml"
    target.write_text("version: 1\n")
    tmp = mnt / ".config.yml.swp"
    tmp.write_text("version: 2\n")
    fd = os.open(tmp, os.O_RDWR)
    os.fsync(fd)
    os.close(fd)
    os.rename(tmp, target)
    assert target.read_text() == "version: 2\n"
    assert sorted(os.listdir(mnt)) == ["config.yml"]


def test_sed_in_place_edit(mnt: Path) -> None:
    (mnt / "link").write_text("sha256:old\n")
    run_tool(["sed", "-i", "s/old/new/", str(mnt / "link")])
    assert (mnt / "link").read_text() == "sha256:new\n"
    assert os.listdir(mnt) == ["link"]


def test_o_excl_on_an_existing_name_is_eexist(mnt: Path) -> None:
    (mnt / "taken").write_bytes(b"1")
    with pytest.raises(FileExistsError):
        os.open(mnt / "taken", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    fd = os.open(mnt / "free", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    os.write(fd, b"mine")
    os.close(fd)
    assert (mnt / "free").read_bytes() == b"mine" and (mnt / "taken").read_bytes() == b"1"


def test_unlink_while_open_vanishes_at_once_and_stays_readable(mnt: Path) -> None:
    data = os.urandom(200_000)
    (mnt / "victim").write_bytes(data)
    with open(mnt / "victim", "rb") as f:
        os.unlink(mnt / "victim")
        assert os.listdir(mnt) == []  # no .fuse_hidden* stand-in
        assert not (mnt / "victim").exists()
        assert f.read() == data
        f.seek(1000)
        assert f.read(10) == data[1000:1010]
    assert os.listdir(mnt) == []


def test_unlink_of_a_file_open_for_writing(mnt: Path) -> None:
    with open(mnt / "scratch", "wb") as f:
        f.write(b"a" * 1000)
        f.flush()
        os.unlink(mnt / "scratch")
        f.write(b"b" * 1000)
    assert os.listdir(mnt) == []


def test_rename_over_an_existing_file_replaces_it(mnt: Path) -> None:
    (mnt / "old").write_bytes(b"old content")
    (mnt / "new").write_bytes(b"new content")
    os.rename(mnt / "new", mnt / "old")
    assert (mnt / "old").read_bytes() == b"new content"
    assert os.listdir(mnt) == ["old"]


def test_rename_of_a_directory_moves_everything_below(mnt: Path) -> None:
    _make_tree(mnt / "a")
    before = tree_digest(mnt / "a")
    os.rename(mnt / "a", mnt / "b")
    assert tree_digest(mnt / "b") == before
    assert os.listdir(mnt) == ["b"]


def test_rmdir_of_a_non_empty_directory_is_enotempty(mnt: Path) -> None:
    (mnt / "d").mkdir()
    (mnt / "d" / "f").write_bytes(b"1")
    with pytest.raises(OSError) as exc:
        os.rmdir(mnt / "d")
    assert exc.value.errno == 39  # ENOTEMPTY
    os.unlink(mnt / "d" / "f")
    os.rmdir(mnt / "d")
    assert os.listdir(mnt) == []


def test_mkdir_then_write_inside(mnt: Path) -> None:
    (mnt / "new").mkdir()
    assert stat.S_ISDIR(os.stat(mnt / "new").st_mode) and os.listdir(mnt / "new") == []
    with pytest.raises(FileExistsError):
        (mnt / "new").mkdir()
    (mnt / "new" / "f").write_bytes(b"x")
    assert os.listdir(mnt / "new") == ["f"]


def test_statfs_reports_name_max_255(mnt: Path) -> None:
    vfs = os.statvfs(mnt)
    assert vfs.f_namemax == 255
    assert vfs.f_bsize > 0 and vfs.f_blocks >= vfs.f_bfree >= 0
    out = run_tool(["df", "-P", str(mnt)]).stdout
    assert out.splitlines()[1].split()[0] == "s3regfs"


def test_random_writes_overwrites_and_read_back_before_close(mnt: Path) -> None:
    path = mnt / "random.bin"
    expected = bytearray(os.urandom(1_000_000))
    path.write_bytes(expected)
    with open(path, "r+b") as f:
        for offset in (900_000, 10, 500_000, 0):
            chunk = os.urandom(4096)
            f.seek(offset)
            f.write(chunk)
            expected[offset : offset + len(chunk)] = chunk
        f.flush()
        f.seek(0)
        assert f.read() == expected  # read back while still open for writing
    assert path.read_bytes() == expected


def test_append_truncate_and_sparse_extension(mnt: Path) -> None:
    path = mnt / "log"
    path.write_bytes(b"line1\n")
    with open(path, "ab") as f:
        f.write(b"line2\n")
    assert path.read_bytes() == b"line1\nline2\n"
    os.truncate(path, 3)
    assert path.read_bytes() == b"lin"
    os.truncate(path, 10)
    assert path.read_bytes() == b"lin" + bytes(7)
    with open(path, "r+b") as f:
        f.seek(20)
        f.write(b"end")
    assert path.read_bytes() == b"lin" + bytes(17) + b"end"


def test_ftruncate_through_an_open_handle(mnt: Path) -> None:
    path = mnt / "t"
    with open(path, "w+b") as f:
        f.write(b"0123456789")
        f.flush()
        os.ftruncate(f.fileno(), 4)
        f.seek(0)
        assert f.read() == b"0123"
    assert path.read_bytes() == b"0123"


def test_shell_redirections_and_cat(mnt: Path) -> None:
    subprocess.run(f"echo one > {mnt}/f && echo two >> {mnt}/f", shell=True, check=True)
    assert run_tool(["cat", str(mnt / "f")]).stdout == "one\ntwo\n"


def test_python_file_io_with_big_buffers(mnt: Path) -> None:
    data = os.urandom(5 * 1024 * 1024)
    with open(mnt / "big", "wb", buffering=1 << 20) as f:
        f.write(data)
    assert os.stat(mnt / "big").st_blksize >= 1 << 20
    with open(mnt / "big", "rb") as f:
        assert f.read() == data
    buf = io.BytesIO()
    with open(mnt / "big", "rb") as f:
        shutil.copyfileobj(f, buf, 1 << 16)
    assert buf.getvalue() == data
