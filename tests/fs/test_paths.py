"""Path mapping: which names the driver contract can hold, and the errno for the others."""

from __future__ import annotations

import errno
import logging
import os

import pytest

from s3regfs.fs import paths
from s3regfs.fs.errors import FsError
from tests.fs.conftest import Mount


@pytest.mark.parametrize("name", ["a", "A-Z_0.9", "...", ".hidden", "x" * 255, "file~ok".replace("~", "-")])
def test_representable_names(name: str) -> None:
    assert paths.name_ok(name)


@pytest.mark.parametrize("name", ["", ".", "..", "a b", "a~", "#a#", "ü", "a:b", "a\nb", "a\udcff"])
def test_unrepresentable_names(name: str) -> None:
    assert not paths.name_ok(name)


def test_create_with_unrepresentable_name_is_einval_and_logs_the_rule(
    m: Mount, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="s3regfs.fs.paths"), pytest.raises(FsError) as info:
        m.fs.create("/with space", os.O_WRONLY | os.O_CREAT, 0o644)
    assert info.value.errno == errno.EINVAL
    assert "A-Z a-z" in caplog.text and "path rule" in caplog.text
    with pytest.raises(FsError) as info:
        m.fs.mkdir("/emacs~", 0o755)
    assert info.value.errno == errno.EINVAL
    m.write_file("/ok", b"x")
    with pytest.raises(FsError) as info:
        m.fs.rename("/ok", "/not ok")
    assert info.value.errno == errno.EINVAL
    assert m.store.list("/") == ["/ok"]


def test_lookup_of_unrepresentable_name_is_enoent_without_a_request(m: Mount) -> None:
    m.driver.reset()
    with pytest.raises(FsError) as info:
        m.fs.getattr("/a b")
    assert info.value.errno == errno.ENOENT
    assert m.driver.count() == 0


def test_long_names_are_enametoolong(m: Mount) -> None:
    for call in (
        lambda: m.fs.create("/" + "x" * 256, os.O_WRONLY | os.O_CREAT, 0o644),
        lambda: m.fs.getattr("/" + "x" * 256),
        lambda: m.fs.mkdir("/" + "/".join(["d" * 200] * 6), 0o755),
    ):
        with pytest.raises(FsError) as info:
            call()
        assert info.value.errno == errno.ENAMETOOLONG
    m.write_file("/" + "x" * 255, b"255 bytes is fine")
    assert m.fs.getattr("/" + "x" * 255).size == 17


def test_fuse_path_is_the_driver_path(m: Mount) -> None:
    m.write_file("/a", b"1")
    m.fs.mkdir("/d", 0o755)
    m.write_file("/d/b.c-d_e", b"2")
    assert sorted(m.store.list("/")) == ["/a", "/d"]
    assert m.store.get_content("/d/b.c-d_e") == b"2"
    assert paths.for_lookup("/") == "/"


_HEX = "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (f"/docker/registry/v2/blobs/sha256/01/{_HEX}", True),
        (f"/docker/registry/v2/blobs/sha256/01/{_HEX}/data", True),
        (f"/docker/registry/v2/repositories/a/b/_layers/sha256/{_HEX}/link", True),
        (f"/docker/registry/v2/repositories/a/_manifests/tags/t/index/sha256/{_HEX}/link", True),
        (f"/r/_manifests/revisions/sha512/{_HEX * 2}/link", True),
        ("/docker/registry/v2/blobs/sha256/01", False),
        ("/docker/registry/v2/repositories/a/_manifests/tags/t/current/link", False),
        ("/docker/registry/v2/repositories/a/_uploads/u/hashstates/sha256/1024", False),
        (f"/x/sha256/{_HEX[:-1]}/link", False),
        (f"/x/sha256/{_HEX}0/link", False),
        (f"/x/sha256/{_HEX.upper()}/link", False),
    ],
)
def test_digest_paths_are_the_content_addressed_part_of_the_layout(path: str, expected: bool) -> None:
    assert paths.digest_path(path) is expected
