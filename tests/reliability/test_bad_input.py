"""Bad input: names, hostile bucket keys, bad configuration, and a fuzz of the path mapping.

* Names through a real mount: each bad name gets one clear errno (EINVAL,
  ENAMETOOLONG, ENOENT for lookups), ``.``/``..`` games create nothing odd,
  and the daemon keeps serving.
* Keys a listing can name but the driver contract cannot (``a/../../etc/x``,
  ``..``, ``x/``, ``sp ace``, ``a//b``, control characters), served by a
  hostile server (the proxy rewrites listings): left out, never requested,
  nothing created outside the mount or the cache directory.
* Configuration (the CLI as a subprocess): every invalid parameter, a missing
  file, broken YAML and wrong credentials against SeaweedFS end in one line
  naming the cause, the documented exit code, no traceback.
* Hypothesis: the FUSE path → driver path → S3 key mapping never produces a
  key that escapes its root, and agrees with the driver's own path check.
"""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s3regfs import exitcodes
from s3regfs.driver import is_valid_path
from s3regfs.fs import paths
from s3regfs.fs.errors import FsError
from tests.reliability.conftest import MountSet, s3_cli_args
from tests.reliability.helpers import BucketView, blob, sha
from tests.support import mounts
from tests.support.loglines import records
from tests.support.s3proxy import Rewrite, S3Proxy

FUSE_UNUSABLE = mounts.fuse_unusable_reason()

# -- names through a mount --------------------------------------------------------------------


@pytest.fixture(scope="module")
def names_mount(tmp_path_factory: pytest.TempPathFactory) -> Iterator[mounts.Mount]:
    if FUSE_UNUSABLE:
        pytest.skip(f"real mounts unavailable: {FUSE_UNUSABLE}")
    root = tmp_path_factory.mktemp("names")
    with mounts.mounted(root / "mnt", driver="inmemory", options={"cache_dir": str(root / "cache")}) as mount:
        yield mount
        assert "Traceback" not in mount.log()


CREATE_CASES = [
    (b"a" * 256, errno.ENAMETOOLONG),
    ("é".encode() * 128, errno.ENAMETOOLONG),  # 128 characters, 256 bytes
    ("é".encode() * 100, errno.EINVAL),  # short enough, but not in the alphabet
    (b"a\x01b", errno.EINVAL),
    (b"line\nbreak", errno.EINVAL),
    (b"tab\tx", errno.EINVAL),
    (b"del\x7f", errno.EINVAL),
    (b"\xff\xfe", errno.EINVAL),  # invalid UTF-8
    (b"abc\x80", errno.EINVAL),
    (b"sp ace", errno.EINVAL),
    (b"a:b", errno.EINVAL),
    (b"a*b", errno.EINVAL),
    (b"#x#", errno.EINVAL),
    (b"%2e%2e", errno.EINVAL),
    (b"x~", errno.EINVAL),
    (b"a\\b", errno.EINVAL),
    ("\u202etxt.exe".encode(), errno.EINVAL),  # right-to-left override
]


@pytest.mark.fuse
@pytest.mark.parametrize("name,expected", CREATE_CASES, ids=[repr(c[0])[:24] for c in CREATE_CASES])
def test_bad_names_get_one_clear_errno(names_mount: mounts.Mount, name: bytes, expected: int) -> None:
    root = bytes(names_mount.path)
    target = root + b"/" + name
    for attempt in (
        lambda: os.close(os.open(target, os.O_WRONLY | os.O_CREAT, 0o644)),
        lambda: os.mkdir(target),
    ):
        with pytest.raises(OSError) as info:
            attempt()
        assert info.value.errno == expected
    os.close(os.open(root + b"/ok-src", os.O_WRONLY | os.O_CREAT, 0o644))
    with pytest.raises(OSError) as info:
        os.rename(root + b"/ok-src", target)
    assert info.value.errno == expected
    # a lookup of such a name: it cannot exist in the bucket
    with pytest.raises(OSError) as info:
        os.stat(target)
    assert info.value.errno in (errno.ENOENT, errno.ENAMETOOLONG)
    assert name not in os.listdir(root)


@pytest.mark.fuse
def test_dot_games_and_deep_paths_create_nothing_odd(names_mount: mounts.Mount) -> None:
    base = names_mount.path / "games"
    base.mkdir()
    (base / "d").mkdir()
    os.mkdir(str(base / "d" / ".." / "e"))  # the kernel resolves '..': this is games/e
    for name in ("...", "....", ".hidden", "-", "_"):
        (base / name).write_bytes(name.encode())
    for bad, expected in ((base / "d" / ".", errno.EEXIST), (base / "d" / "..", errno.EEXIST)):
        with pytest.raises(OSError) as info:
            os.mkdir(bad)
        assert info.value.errno == expected
    with pytest.raises(OSError) as info:
        os.rename(base / "d", base / "d" / "inside")
    assert info.value.errno == errno.EINVAL
    deep = base
    with pytest.raises(OSError) as info:  # each name is fine, the whole key grows past 1024 bytes
        for i in range(8):
            deep = deep / (f"{i}" * 200)
            deep.mkdir()
    assert info.value.errno == errno.ENAMETOOLONG
    assert sorted(os.listdir(base)) == sorted(["-", "...", "....", ".hidden", "0" * 200, "_", "d", "e"])
    ls = subprocess.run(["ls", "-a1f", str(base / "d")], capture_output=True, text=True, check=True)
    assert sorted(ls.stdout.split()) == [".", ".."]


@pytest.mark.fuse
def test_the_daemon_keeps_serving_after_bad_names(names_mount: mounts.Mount) -> None:
    for name, _ in CREATE_CASES:
        try:
            os.close(os.open(bytes(names_mount.path) + b"/" + name, os.O_WRONLY | os.O_CREAT, 0o644))
        except OSError:
            pass
    data = blob(300_000, 1)
    (names_mount.path / "alive").write_bytes(data)
    assert sha((names_mount.path / "alive").read_bytes()) == sha(data)
    assert names_mount.proc.poll() is None
    log = names_mount.log()
    assert "path rule" in log  # one line naming the rule (names over 255 bytes fail quietly at lookup)
    assert "Traceback" not in log


@pytest.mark.fuse
def test_a_name_cannot_forge_log_lines(names_mount: mounts.Mount) -> None:
    forged = b"x\nCRITICAL s3regfs.forged: the registry was deleted\r\x1b[2Kok"
    with pytest.raises(OSError) as info:
        os.close(os.open(bytes(names_mount.path) + b"/" + forged, os.O_WRONLY | os.O_CREAT, 0o644))
    assert info.value.errno == errno.EINVAL
    log = names_mount.log()
    assert "the registry was deleted" in log  # it was logged...
    assert not any(line.startswith("CRITICAL s3regfs.forged") for line in records(log))  # ...on its own line
    assert "\x1b" not in log and "\r" not in log


# -- hostile bucket keys -------------------------------------------------------------------------

HOSTILE_NAMES = ["..", ".", "sp ace", "ctl\x01x", "üml", "new\nline", "a:b", ""]
HOSTILE_DIRS = ["../", "./", "/", "sp ace/", "..%2f/"]
HOSTILE_FLAT = ["../../etc/passwd", "a/../../../etc/shadow", "./x", "a//b", "a/./b", "x/",
                "docker/registry/v2/blobs/sha256/../../../../../../../../tmp/s3regfs-escape"]


def _contents(key: str, size: int = 5) -> str:
    return (f"<Contents><Key>{urllib.parse.quote(key, safe='/')}</Key>"
            "<LastModified>2024-01-01T00:00:00.000Z</LastModified>"
            f'<ETag>"d41d8cd98f00b204e9800998ecf8427e"</ETag><Size>{size}</Size>'
            "<StorageClass>STANDARD</StorageClass></Contents>")


def _merge(text: str, tag: str, inner: str, extra: list[tuple[str, str]]) -> str:
    """Insert ``extra`` (key, element) blocks of ``tag`` among the existing ones in key order (S3 sorts listings)."""
    pattern = re.compile(rf"<{tag}>.*?</{tag}>", re.DOTALL)
    blocks = [(urllib.parse.unquote(re.search(rf"<{inner}>(.*?)</{inner}>", b.group(0)).group(1)), b.group(0))
              for b in pattern.finditer(text)]
    merged = list(blocks)
    for key, block in sorted(extra):
        at = next((i for i, (k, _) in enumerate(merged) if k > key), len(merged))
        merged.insert(at, (key, block))
    body = "".join(block for _, block in merged)
    stripped = pattern.sub("", text)
    return stripped.replace("</ListBucketResult>", body + "</ListBucketResult>")


def hostile_listing(body: bytes) -> bytes:
    """Add keys no client of the contract could write to a ListObjectsV2 answer (url-encoded, as asked)."""
    text = body.decode()
    found = re.search(r"<Prefix>(.*?)</Prefix>", text)
    prefix = urllib.parse.unquote(found.group(1)) if found else ""
    if "<Delimiter>" in text:
        text = _merge(text, "Contents", "Key", [(prefix + n, _contents(prefix + n)) for n in HOSTILE_NAMES])
        prefixes = [(prefix + d, (f"<CommonPrefixes><Prefix>{urllib.parse.quote(prefix + d, safe='/')}</Prefix>"
                                  "</CommonPrefixes>")) for d in HOSTILE_DIRS]
        text = _merge(text, "CommonPrefixes", "Prefix", prefixes)
    else:
        text = _merge(text, "Contents", "Key", [(prefix + k, _contents(prefix + k)) for k in HOSTILE_FLAT])
    return text.encode()


@pytest.mark.fuse
def test_hostile_keys_are_left_out_never_followed_and_escape_nothing(
    s3_mounts: MountSet, s3_proxy: S3Proxy, store: BucketView, tmp_path: Path
) -> None:
    good = {"a/b": blob(1000, 2), "ok/file": blob(2000, 3), "docker/registry/v2/blobs/sha256/ab/data": blob(3000, 4)}
    for key, data in good.items():
        store.put(key, data)
    rule = s3_proxy.fault(Rewrite(hostile_listing), op="ListObjectsV2")
    m = s3_mounts.start()
    found = mounts.tree_digest(m.path)
    assert rule.fired >= 1
    expected_dirs = {"a", "ok", "docker", "docker/registry", "docker/registry/v2", "docker/registry/v2/blobs",
                     "docker/registry/v2/blobs/sha256", "docker/registry/v2/blobs/sha256/ab"}
    assert {p for p, v in found.items() if v == "dir"} <= expected_dirs | {"x"}  # "x/" is a folder placeholder
    assert {p: v for p, v in found.items() if v != "dir"} == {k: sha(v) for k, v in good.items()}
    for listing in (m.path, m.path / "a", m.path / "ok"):
        entries = subprocess.run(["ls", "-a1f", str(listing)], capture_output=True, text=True, check=True).stdout
        names = entries.split("\n")[:-1]
        assert names.count(".") == 1 and names.count("..") == 1, names
        assert not any(n in names for n in ("sp ace", "ctl\x01x", "üml", "a:b", ""))
    assert sha((m.path / "a" / "b").read_bytes()) == sha(good["a/b"])
    # nothing was asked for a key with a '.'/'..' component or an empty one
    for record in s3_proxy.requests():
        parts = record.path.split("/")[2:]
        assert ".." not in parts and "." not in parts and "" not in parts[:-1], record
    assert not Path("/tmp/s3regfs-escape").exists()
    assert not (tmp_path / "etc").exists()
    cache_names = [p.name for p in (tmp_path / "mnt-cache").rglob("*")]
    assert all(re.fullmatch(r"[0-9a-f]{40}-\d+|[a-z]+|\.tmp[-\w.]*|[\w.-]+", n) for n in cache_names), cache_names
    new = blob(5000, 5)
    (m.path / "a" / "new").write_bytes(new)  # and the mount still works
    assert sha(store.get("a/new") or b"") == sha(new)


# -- configuration -----------------------------------------------------------------------------

BAD_PARAMETERS = [
    ("region=mars-1", "region", "invalid region provided: mars-1"),  # checked only without regionendpoint
    ("chunksize=1", "chunksize", "should be a number between 5242880"),
    ("chunksize=ten", "chunksize", "must be an integer"),
    ("multipartcopychunksize=7", "multipartcopychunksize", "between"),
    ("multipartcopymaxconcurrency=0", "multipartcopymaxconcurrency", "between 1"),
    ("multipartcopythresholdsize=-1", "multipartcopythresholdsize", "between 0"),
    ("storageclass=FOO", "storageclass", "FOO invalid"),
    ("objectacl=everyone", "objectacl", "everyone"),
    ("secure=maybe", "secure", "boolean"),
    ("forcepathstyle=perhaps", "forcepathstyle", "boolean"),
    ("encrypt=2", "encrypt", "boolean"),
    ("skipverify=yes!", "skipverify", "boolean"),
    ("partsinflight=0", "partsinflight", "between 1"),
    ("redirectendpoint=ftp-no-scheme", "redirectendpoint", "scheme"),
    ("rootdirectory=/a/../b", "rootdirectory", 'has a ".." component'),
    ("bogus=1", "bogus", "unknown s3 parameter"),
    ("uid=-5", "uid", "between 0"),
    ("gid=root-ish", "gid", "gid"),
    ("file_mode=999", "file_mode", "octal"),
    ("metadata_ttl=abc", "metadata_ttl", "duration"),
    ("readahead_max=lots", "readahead_max", "readahead_max"),
    ("read_parallelism=0", "read_parallelism", "read_parallelism"),
    ("cloudfront.baseurl=https://cdn.example,cloudfront.privatekey=/nonexistent.pem,cloudfront.keypairid=K",
     "privatekey", "/nonexistent.pem"),
]


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "s3regfs", *args], capture_output=True, text=True,
                          env=env or dict(os.environ), timeout=timeout, check=False)


def assert_one_line_error(done: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    assert done.returncode == code, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("s3regfs: error:")]
    assert len(errors) == 1, done.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


@pytest.mark.parametrize("option,names,cause", BAD_PARAMETERS, ids=[p[0].split("=")[0] for p in BAD_PARAMETERS])
def test_every_invalid_parameter_is_one_line_naming_it(tmp_path: Path, option: str, names: str, cause: str) -> None:
    mp = tmp_path / "mp"
    mp.mkdir()
    base = "bucket=b" if option.startswith("region=") else "bucket=b,regionendpoint=http://127.0.0.1:9"
    done = run_cli("mount", "-f", "--driver", "s3", "-o", f"{base},{option}", str(mp))
    assert_one_line_error(done, exitcodes.CONFIG, names, cause)
    assert not mounts.mountpoints.mounted_at(str(mp))


def test_missing_and_broken_config_files(tmp_path: Path) -> None:
    mp = tmp_path / "mp"
    mp.mkdir()
    missing = tmp_path / "nope.yml"
    assert_one_line_error(run_cli("mount", "-f", "--config", str(missing), str(mp)), exitcodes.CONFIG,
                          str(missing), "No such file")
    broken = tmp_path / "broken.yml"
    broken.write_text("version: 0.1\nstorage:\n  s3: [unclosed\n")
    assert_one_line_error(run_cli("mount", "-f", "--config", str(broken), str(mp)), exitcodes.CONFIG,
                          str(broken), "YAML", "line")
    wrong_shape = tmp_path / "list.yml"
    wrong_shape.write_text("- just\n- a list\n")
    assert_one_line_error(run_cli("mount", "-f", "--config", str(wrong_shape), str(mp)), exitcodes.CONFIG,
                          "not a mapping")
    binary = tmp_path / "binary.yml"
    binary.write_bytes(b"\x00\xff\xfe garbage \x01")
    assert_one_line_error(run_cli("mount", "-f", "--config", str(binary), str(mp)), exitcodes.CONFIG, str(binary))


@pytest.mark.parametrize("root", ["/a/../b", "a//b", "/./x", "registry/.."])
def test_a_rootdirectory_with_dot_or_empty_components_is_refused_at_start(tmp_path: Path, root: str) -> None:
    config = tmp_path / "config.yml"
    config.write_text("version: 0.1\nstorage:\n  s3:\n    bucket: b\n    regionendpoint: http://127.0.0.1:9\n"
                      f"    rootdirectory: {root}\n")
    mp = tmp_path / "mp"
    mp.mkdir()
    where = f"config file {config} (storage.s3.rootdirectory): the rootdirectory parameter {root} has "
    for foreground in (["-f"], []):  # the background mount checks before it starts the daemon
        assert_one_line_error(run_cli("mount", *foreground, "--config", str(config), str(mp)), exitcodes.CONFIG,
                              where, "component", "correct or remove the value")
        assert not mounts.mountpoints.mounted_at(str(mp))
    env = {**os.environ, "REGISTRY_STORAGE_S3_ROOTDIRECTORY": root}
    assert_one_line_error(run_cli("mount", "-f", "--config", str(config), str(mp), env=env), exitcodes.CONFIG,
                          "environment variable REGISTRY_STORAGE_S3_ROOTDIRECTORY: the rootdirectory parameter")
    checked = run_cli("check", "--config", str(config))  # check reports it as its first step, on stdout
    assert checked.returncode == exitcodes.CONFIG, checked.stdout + checked.stderr
    assert "Traceback" not in checked.stdout + checked.stderr
    assert checked.stdout.splitlines() == [f"FAIL  configuration: {where}" + checked.stdout.split(" has ", 1)[1]
                                           .rstrip("\n")]
    assert "correct or remove the value" in checked.stdout


@pytest.mark.parametrize("which", ["secret", "access"])
def test_wrong_credentials_are_refused_by_seaweedfs_in_one_line(tmp_path: Path, s3_server: Any,
                                                                shared_bucket: str, which: str) -> None:
    params = s3_server.driver_parameters(shared_bucket)
    wrong = "WRONG" + ("s3cr3t" * 6 if which == "secret" else "KEY123")
    params["secretkey" if which == "secret" else "accesskey"] = wrong
    args, env = s3_cli_args(params)
    mp = tmp_path / "mp"
    mp.mkdir()
    line = assert_one_line_error(run_cli("mount", "-f", *args, str(mp), env=env), exitcodes.CREDENTIALS)
    assert re.search(r"SignatureDoesNotMatch|InvalidAccessKeyId|AccessDenied|Access Denied|signature", line), line
    assert wrong not in line and s3_server.secret_key not in line
    assert not mounts.mountpoints.mounted_at(str(mp))


# -- fuzz: FUSE path → driver path → S3 key ------------------------------------------------------

_ALPHABET = st.sampled_from(list("abcXYZ019._-") + ["/", " ", "\x00", "\n", "é", "\udcff", "~", "%"])
_names = st.one_of(
    st.text(_ALPHABET, min_size=0, max_size=12),
    st.sampled_from([".", "..", "...", "", "a" * 255, "a" * 256, "é" * 128]),
    st.text(max_size=8),
)
_paths = st.lists(_names, min_size=0, max_size=6).map(lambda parts: "/" + "/".join(parts))


def s3_key(root: str, driver_path: str) -> str:
    """The s3 driver's key for ``driver_path`` (upstream ``s3Path``)."""
    from s3regfs.driver.s3.driver import S3Driver

    return S3Driver.s3_path(_KeyOnly(root), driver_path)  # type: ignore[arg-type]


class _KeyOnly:
    def __init__(self, root: str) -> None:
        self._root = root.rstrip("/")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=_paths, root=st.sampled_from(["", "registry", "/a/b/", "r"]))
def test_fuzz_path_mapping_never_escapes(path: str, root: str) -> None:
    found = paths.problem(path)
    try:
        driver_path = paths.for_create(path)
    except FsError as exc:
        assert found is not None and exc.errno == found[0] in (errno.EINVAL, errno.ENAMETOOLONG)
        with pytest.raises(FsError) as info:
            paths.for_lookup(path)
        assert info.value.errno in (errno.ENOENT, errno.ENAMETOOLONG)
        return
    assert found is None and driver_path == path
    assert path == "/" or is_valid_path(path)  # the driver's own check agrees
    assert len(path.encode("utf-8", "surrogateescape")) <= paths.KEY_MAX
    key = s3_key(root, path)
    parts = key.split("/")
    assert ".." not in parts and "." not in parts
    assert "" not in parts[:-1] or path == "/"
    prefix = root.strip("/")
    assert key == prefix or key.startswith(prefix + "/") if prefix else not key.startswith("/")


@settings(max_examples=300, deadline=None)
@given(directory=_paths, name=_names, new=_paths)
def test_fuzz_join_parent_rebase_stay_consistent(directory: str, name: str, new: str) -> None:
    if paths.problem(directory) or not paths.name_ok(name) or paths.problem(new):
        return
    if "/" in (directory, new) or new == directory or paths.is_under(new, directory):
        return  # the root is never renamed nor a rename target; a directory never moves into itself
    child = paths.join(directory, name)
    assert paths.parent(child) == directory and paths.basename(child) == name
    assert paths.is_under(child, directory) and not paths.is_under(directory, child)
    moved = paths.rebase(child, directory, new)
    assert moved == paths.join(new, name)
    assert paths.is_under(moved, new)
