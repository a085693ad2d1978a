"""Security defaults, end to end: nobody else gets in, read-only is read-only, secrets stay secret.

* Without ``allow_other`` another user (``nobody``, via ``setpriv``) cannot even
  stat the mount; with it, ``default_permissions`` is on (``/proc/mounts``) so
  the kernel enforces the modes: ``nobody`` reads a 0644 file but cannot
  write, create or delete.
* ``ro``: every change is EROFS, and no write request reaches S3.
* A CloudFront private key file that group or others can read, that another
  user owns, or that lies in a directory another user can write is refused by
  ``s3regfs mount`` with one line naming the file and the fix.
* A config file holding a secret that group or others can read gets one
  WARNING line naming the file and ``chmod 600 FILE``.
* A full run at debug level, with faults, CloudFront and a wrong-credentials
  attempt, never prints the secret key, the access key or the private key.
* Signed URLs expire exactly when they say and cannot be pointed at another
  object (against the test CloudFront server, with injected clocks).
"""

from __future__ import annotations

import errno
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from s3regfs import exitcodes
from s3regfs.middleware.keys import generate_keypair
from tests.reliability.conftest import MountSet, s3_cli_args
from tests.reliability.helpers import BucketView, MiB, blob, sha
from tests.support import mounts
from tests.support.cloudfront_server import CloudFrontServer, s3_origin
from tests.support.loglines import records
from tests.support.s3proxy import GET_OPS, INTERNAL_ERROR, SLOWDOWN, WRITE_OPS, ResetMidBody, S3Proxy

FUSE_UNUSABLE = mounts.fuse_unusable_reason()
needs_root_and_fuse = pytest.mark.skipif(
    FUSE_UNUSABLE is not None or os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason=f"needs root, setpriv and FUSE ({FUSE_UNUSABLE})",
)
KEY_ID = "KSECURITYTEST01"
NOBODY = 65534


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A directory other users can traverse (pytest's tmp dirs are 0700), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="s3regfs-sec-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for child in path.iterdir():
            if mounts.mountpoints.mounted_at(str(child)):
                subprocess.run(["fusermount3", "-u", "-z", str(child)], capture_output=True, check=False)
        shutil.rmtree(path, ignore_errors=True)


def as_nobody(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *cmd],
                          capture_output=True, text=True, timeout=30, check=False)


def mount_options(path: Path) -> set[str]:
    for line in Path("/proc/mounts").read_text().splitlines():
        fields = line.split()
        if fields[1] == str(path):
            return set(fields[3].split(","))
    raise AssertionError(f"{path} is not in /proc/mounts")


# -- who can use the mount --------------------------------------------------------------------


@pytest.mark.fuse
@needs_root_and_fuse
def test_without_allow_other_no_other_user_gets_in(public_dir: Path) -> None:
    with mounts.mounted(public_dir / "mnt", driver="inmemory", options={"cache_dir": str(public_dir / "c")}) as m:
        (m.path / "file").write_bytes(b"registry data")
        assert "allow_other" not in mount_options(m.path)
        for cmd in (["cat", str(m.path / "file")], ["ls", str(m.path)], ["stat", str(m.path)],
                    ["touch", str(m.path / "new")]):
            done = as_nobody(*cmd)
            assert done.returncode != 0 and "Permission denied" in done.stderr, (cmd, done)
        assert (m.path / "file").read_bytes() == b"registry data"  # the owner still can
        assert not (m.path / "new").exists()


@pytest.mark.fuse
@needs_root_and_fuse
def test_with_allow_other_the_kernel_enforces_the_modes(public_dir: Path) -> None:
    options = {"cache_dir": str(public_dir / "c"), "allow_other": True}
    with mounts.mounted(public_dir / "mnt", driver="inmemory", options=options) as m:
        assert {"allow_other", "default_permissions"} <= mount_options(m.path)
        (m.path / "shared").write_bytes(b"readable by all")
        (m.path / "dir").mkdir()
        assert as_nobody("cat", str(m.path / "shared")).stdout == "readable by all"
        refused = [
            ["sh", "-c", f"echo x >> {m.path / 'shared'}"],
            ["touch", str(m.path / "new")],
            ["rm", "-f", str(m.path / "shared")],
            ["mkdir", str(m.path / "dir" / "sub")],
            ["mv", str(m.path / "shared"), str(m.path / "dir" / "moved")],
            ["chmod", "777", str(m.path / "shared")],
        ]
        for cmd in refused:
            done = as_nobody(*cmd)
            assert done.returncode != 0 and ("Permission denied" in done.stderr
                                             or "Operation not permitted" in done.stderr), (cmd, done)
        assert (m.path / "shared").read_bytes() == b"readable by all"
        assert sorted(os.listdir(m.path)) == ["dir", "shared"] and os.listdir(m.path / "dir") == []


@pytest.mark.fuse
@needs_root_and_fuse
def test_with_allow_other_a_private_file_mode_keeps_others_out(public_dir: Path) -> None:
    options = {"cache_dir": str(public_dir / "c"), "allow_other": True, "file_mode": "0600", "dir_mode": "0700"}
    with mounts.mounted(public_dir / "mnt", driver="inmemory", options=options) as m:
        (m.path / "private").write_bytes(b"x")
        done = as_nobody("cat", str(m.path / "private"))
        assert done.returncode != 0 and "Permission denied" in done.stderr


# -- read-only ---------------------------------------------------------------------------------


@pytest.mark.fuse
def test_read_only_refuses_every_write_with_erofs(s3_mounts: MountSet, s3_proxy: S3Proxy,
                                                  store: BucketView) -> None:
    data = blob(100_000, 1)
    store.put("dir/file", data)
    m = s3_mounts.start(options={"ro": True})
    assert "ro" in mount_options(m.path)
    f, d = m.path / "dir" / "file", m.path / "dir"
    attempts = {
        "open for writing": lambda: os.close(os.open(f, os.O_WRONLY)),
        "open read-write": lambda: os.close(os.open(f, os.O_RDWR)),
        "append": lambda: os.close(os.open(f, os.O_WRONLY | os.O_APPEND)),
        "create": lambda: os.close(os.open(d / "new", os.O_WRONLY | os.O_CREAT, 0o644)),
        "truncate": lambda: os.truncate(f, 0),
        "mkdir": lambda: os.mkdir(d / "sub"),
        "rmdir": lambda: os.rmdir(d),
        "unlink": lambda: os.unlink(f),
        "rename": lambda: os.rename(f, d / "renamed"),
        "chmod": lambda: os.chmod(f, 0o600),
        "chown": lambda: os.chown(f, 1, 1),
        "utime": lambda: os.utime(f, (0, 0)),
        "setxattr": lambda: os.setxattr(f, "user.x", b"1"),
        "removexattr": lambda: os.removexattr(f, "user.s3regfs.url"),
        "symlink": lambda: os.symlink("file", d / "link"),
        "link": lambda: os.link(f, d / "hard"),
        "mknod": lambda: os.mkfifo(d / "fifo"),
    }
    for what, attempt in attempts.items():
        with pytest.raises(OSError) as info:
            attempt()
        assert info.value.errno == errno.EROFS, what
    assert sha(f.read_bytes()) == sha(data)  # reading works
    assert os.listdir(d) == ["file"]
    assert not set(s3_proxy.counts()) & {*WRITE_OPS, "DeleteObject", "DeleteObjects", "AbortMultipartUpload"}
    assert store.list_keys() == ["dir/file"]


# -- the CloudFront private key ------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_cloudfront_key_readable_by_others_is_refused_by_mount(tmp_path: Path, mode: int) -> None:
    key_path, _ = generate_keypair(tmp_path)
    key_path.chmod(mode)
    mp = tmp_path / "mp"
    mp.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "s3regfs", "mount", "-f", "--driver", "s3", "-o",
         (f"bucket=b,regionendpoint=http://127.0.0.1:9,cloudfront.baseurl=https://cdn.example/,"
          f"cloudfront.privatekey={key_path},cloudfront.keypairid={KEY_ID}"), str(mp)],
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == exitcodes.CONFIG
    errors = [line for line in done.stderr.splitlines() if line.startswith("s3regfs: error:")]
    assert len(errors) == 1 and str(key_path) in errors[0] and "chmod 600" in errors[0], done.stderr
    assert "Traceback" not in done.stderr and "PRIVATE KEY" not in done.stderr
    assert not mounts.mountpoints.mounted_at(str(mp))


DUMMY_CREDENTIALS = {**{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "REGISTRY_"))},
                     "AWS_ACCESS_KEY_ID": "AKIDDUMMY",
                     "AWS_SECRET_ACCESS_KEY": "dummy-secret-for-local-signing"}
"""URLs are signed locally, but the s3 driver still wants credentials to exist."""


def _cloudfront_cli(command: str, key_path: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``s3regfs url`` (signs locally) or ``mount -f`` (fails at the unreachable endpoint) with the key."""
    options = ("bucket=b,regionendpoint=http://127.0.0.1:9,cloudfront.baseurl=https://cdn.example/,"
               f"cloudfront.privatekey={key_path},cloudfront.keypairid={KEY_ID}")
    if command == "url":
        args = ["url", "--driver", "s3", "-o", options, "/docker/x"]
    else:
        mp = tmp_path / "mp"
        mp.mkdir(exist_ok=True)
        args = ["mount", "-f", "--driver", "s3", "-o", options, str(mp)]
    return subprocess.run([sys.executable, "-m", "s3regfs", *args], capture_output=True, text=True,
                          timeout=60, env=DUMMY_CREDENTIALS, check=False)


def _refused(done: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert done.returncode == exitcodes.CONFIG, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("s3regfs: error:")]
    assert len(errors) == 1, done.stderr
    assert "Traceback" not in done.stderr and "PRIVATE KEY" not in done.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


@needs_root_and_fuse
def test_cloudfront_key_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    key_path, _ = generate_keypair(tmp_path)
    os.chown(key_path, NOBODY, NOBODY)  # mode 0600, but nobody's: nobody could rewrite it
    _refused(_cloudfront_cli("mount", key_path, tmp_path), str(key_path), "uid 65534",
             f"chown root {key_path}")
    _refused(_cloudfront_cli("url", key_path, tmp_path), str(key_path), "owned by")
    assert not mounts.mountpoints.mounted_at(str(tmp_path / "mp"))
    os.chown(key_path, 0, 0)
    assert _cloudfront_cli("url", key_path, tmp_path).returncode == exitcodes.OK


@pytest.mark.parametrize("dir_mode", [0o777, 0o775, 0o757, 0o1777], ids=oct)
def test_cloudfront_key_in_a_directory_others_can_write_is_refused(tmp_path: Path, dir_mode: int) -> None:
    """Whoever can write the directory can put another key in place of this one; a sticky bit stops that."""
    keys = Path(tempfile.mkdtemp(prefix="s3regfs-keys-", dir="/tmp"))
    try:
        key_path, _ = generate_keypair(keys)
        keys.chmod(dir_mode)
        if dir_mode & 0o1000:  # like /tmp: only the key's owner may rename or remove it
            if os.geteuid() == 0:
                os.chown(keys, NOBODY, NOBODY)  # ... unless the directory is another user's
                _refused(_cloudfront_cli("url", key_path, tmp_path), str(keys), "another user")
                os.chown(keys, 0, 0)
            done = _cloudfront_cli("url", key_path, tmp_path)
            assert done.returncode == exitcodes.OK, done.stderr
            assert "Key-Pair-Id=" + KEY_ID in done.stdout
            return
        line = _refused(_cloudfront_cli("mount", key_path, tmp_path), str(key_path), str(keys),
                        f"chmod go-w {keys}")
        assert f"mode {dir_mode:04o}" in line
        keys.chmod(0o755)
        assert _cloudfront_cli("url", key_path, tmp_path).returncode == exitcodes.OK
    finally:
        shutil.rmtree(keys, ignore_errors=True)


# -- a config file holding a secret ---------------------------------------------------------------

SECRET_CONFIG = """\
version: 0.1
storage:
  s3:
    bucket: b
    regionendpoint: http://127.0.0.1:9
    accesskey: AKIDSECURITYTEST
    secretkey: {secret}
"""


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o600], ids=oct)
def test_a_config_file_with_a_secret_that_others_can_read_gets_a_warning(tmp_path: Path, mode: int) -> None:
    secret = "cfgSECRET" + "x7Q" * 8
    config = tmp_path / "config.yml"
    config.write_text(SECRET_CONFIG.format(secret=secret))
    config.chmod(mode)
    done = subprocess.run([sys.executable, "-m", "s3regfs", "url", "--config", str(config), "/docker/x"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == exitcodes.OK, done.stderr
    warnings = [line for line in records(done.stderr) if str(config) in line]
    assert secret not in done.stderr + done.stdout
    if mode == 0o600:
        assert warnings == [], done.stderr
        return
    assert len(warnings) == 1, done.stderr
    assert warnings[0].startswith("WARNING "), warnings[0]
    assert "storage.s3.secretkey" in warnings[0] and f"mode {mode:04o}" in warnings[0]
    assert warnings[0].endswith(f"chmod 600 {config}"), warnings[0]
    # the mount says it too (here it then fails: nothing listens at the endpoint)
    mp = tmp_path / "mp"
    mp.mkdir()
    for foreground in (["-f"], []):  # in the background the parent says it, not the daemon child again
        done = subprocess.run([sys.executable, "-m", "s3regfs", "mount", *foreground, "--config", str(config),
                               str(mp)], capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == exitcodes.STORAGE, done.stderr
        assert [line for line in records(done.stderr) if str(config) in line] == warnings
        assert secret not in done.stderr


def test_a_config_file_without_a_secret_may_be_readable(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text("".join(line + "\n" for line in SECRET_CONFIG.splitlines() if "key:" not in line))
    config.chmod(0o644)
    done = subprocess.run([sys.executable, "-m", "s3regfs", "url", "--config", str(config), "/docker/x"],
                          capture_output=True, text=True, timeout=60, env=DUMMY_CREDENTIALS, check=False)
    assert done.returncode == exitcodes.OK and "WARNING" not in done.stderr, done.stderr


# -- secrets never reach the logs --------------------------------------------------------------------


@pytest.mark.fuse
def test_secrets_never_reach_logs(s3_mounts: MountSet, s3_proxy: S3Proxy, store: BucketView, tmp_path: Path,
                                  s3_server: Any, proxied_params: dict[str, Any]) -> None:
    key_path, public_pem = generate_keypair(tmp_path)
    pem_lines = [line for line in key_path.read_text().splitlines() if "PRIVATE KEY" not in line]
    secrets = [s3_server.secret_key, s3_server.access_key, *pem_lines]
    with CloudFrontServer(s3_origin(s3_server.client(), store.bucket), {KEY_ID: public_pem}) as cdn:
        cloudfront = {"cloudfront.baseurl": cdn.url, "cloudfront.privatekey": str(key_path),
                      "cloudfront.keypairid": KEY_ID}
        m = s3_mounts.start(params={**proxied_params, "chunksize": str(5 * MiB), "loglevel": "debugwithsigning"},
                            options={"log_level": "debug", "stream_threshold": "5MiB", **cloudfront},
                            expect_clean=False)
        # exercise the error paths too: retried faults, then a write that cannot be saved
        s3_proxy.fault(INTERNAL_ERROR, op="UploadPart", nth=1)
        s3_proxy.fault(SLOWDOWN, op="PutObject", nth=1)
        s3_proxy.fault(ResetMidBody(after_bytes=1000), op=GET_OPS, nth=2)
        big, small = blob(6 * MiB, 2), blob(50_000, 3)
        (m.path / "big").write_bytes(big)
        (m.path / "small").write_bytes(small)
        assert sha((m.path / "big").read_bytes()) == sha(big)
        url = os.getxattr(m.path / "small", "user.s3regfs.url").decode()
        with urllib.request.urlopen(url, timeout=30) as resp:
            assert resp.read() == small
        os.rename(m.path / "small", m.path / "renamed")
        os.unlink(m.path / "renamed")
        failing = s3_proxy.fault(INTERNAL_ERROR, op="PutObject")
        with pytest.raises(OSError):
            (m.path / "lost").write_bytes(b"cannot be saved")
        assert failing.fired >= 1
        s3_proxy.clear_rules()
        m.unmount()
        outputs = {"mount": m.log()}
    args, env = s3_cli_args(proxied_params)
    for name, cmd in {"uploads": ["uploads", "--debug", *args, "list"],
                      "check": ["check", "--debug", *args]}.items():
        done = subprocess.run([sys.executable, "-m", "s3regfs", *cmd], capture_output=True, text=True, env=env,
                              timeout=120, check=False)
        outputs[name] = done.stdout + done.stderr
    fake_secret = "FAKEsecret" + "Zq9" * 10
    fake_args, fake_env = s3_cli_args({**proxied_params, "secretkey": fake_secret})
    done = subprocess.run([sys.executable, "-m", "s3regfs", "check", "--debug", *fake_args], capture_output=True,
                          text=True, env=fake_env, timeout=120, check=False)
    outputs["wrong secret"] = done.stdout + done.stderr
    assert done.returncode != 0
    assert len(outputs["mount"]) > 100_000  # debug logs of a real run were collected
    assert "Credential=***" in outputs["mount"]  # botocore's signing log was there, and redacted
    for name, text in outputs.items():
        for secret in [*secrets, fake_secret]:
            assert secret not in text, f"a secret ({secret[:4]}...) is in the {name} output"


# -- secrets stay out of the environment of every process the mount starts ---------------------------

ENV_PROBES = ("stat", "fusermount3")
"""What the daemon runs: ``stat`` (readiness probe), ``fusermount3`` (unmount); wrapped to record their env"""


def _record_environ_of(bin_dir: Path, dumps: Path) -> None:
    """Wrappers first on PATH: each saves its own environment, then runs the real program."""
    bin_dir.mkdir()
    dumps.mkdir()
    for name in ENV_PROBES:
        real = shutil.which(name)
        assert real, f"{name} is not installed"
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\ncat /proc/$$/environ > "{dumps}/{name}.$$"\nexec {real} "$@"\n')
        script.chmod(0o755)


def _daemon_of(mountpoint: Path) -> int:
    """The pid of the background daemon serving ``mountpoint`` (the re-executed ``--daemon-child``)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # not a process, or it just exited
            continue
        if b"--daemon-child" in argv and str(mountpoint).encode() in argv:
            found.append(int(entry.name))
    assert len(found) == 1, found
    return found[0]


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@needs_root_and_fuse
@pytest.mark.fuse
@pytest.mark.parametrize("how", ["background-registry", "background-aws", "foreground-registry"])
def test_no_process_the_mount_starts_inherits_the_secret(tmp_path: Path, s3_server: Any, shared_bucket: str,
                                                         store: BucketView, how: str) -> None:
    """``s3regfs mount`` with the keys in the environment (``REGISTRY_STORAGE_S3_*`` or ``AWS_*``).

    In the background (as the CLI, mount(8) and fstab start it) the daemon child never has them in its
    environment; in the foreground (systemd) the daemon was started with them, but whatever it starts (the
    readiness probe, ``fusermount3``) does not get them, in either case.
    """
    mode, source = how.split("-")
    params = s3_server.driver_parameters(shared_bucket, rootdirectory=store.root)
    access, secret = params.pop("accesskey"), params.pop("secretkey")
    names = {"registry": ("REGISTRY_STORAGE_S3_ACCESSKEY", "REGISTRY_STORAGE_S3_SECRETKEY"),
             "aws": ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}[source]
    bin_dir, dumps, mp = tmp_path / "bin", tmp_path / "environ", tmp_path / "mnt"
    _record_environ_of(bin_dir, dumps)
    mp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "REGISTRY_", "S3REGFS_"))}
    env.update({names[0]: access, names[1]: secret, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
    options = mounts.format_options({**mounts.s3_options(params)[0], "cache_dir": str(tmp_path / "cache")})
    cmd = [sys.executable, "-m", "s3regfs", "mount", "--driver", "s3", "-o", options, str(mp)]
    environs: dict[str, bytes] = {}
    daemon = proc = None
    try:
        if mode == "background":  # returns once the daemon child answers
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False)
            assert done.returncode == exitcodes.OK, done.stderr
            daemon = _daemon_of(mp)
        else:
            log_path = tmp_path / "mount.log"
            with open(log_path, "wb") as log_file:
                proc = subprocess.Popen([*cmd, "-f"], stdin=subprocess.DEVNULL, stdout=log_file,
                                        stderr=subprocess.STDOUT, env=env, start_new_session=True)
            daemon = proc.pid
            mounts.wait_answering(mounts.Mount(mp, proc, log_path), 60)
        data = blob(300_000, 7)
        (mp / "written").write_bytes(data)  # the keys did reach the daemon
        assert sha(store.get("written") or b"") == sha(data)
        for pid in [daemon, *_descendants(daemon)] if mode == "background" else _descendants(daemon):
            environs[f"process {pid}"] = Path(f"/proc/{pid}/environ").read_bytes()
        pidfd = os.pidfd_open(daemon)
        os.kill(daemon, signal.SIGTERM)  # it unmounts itself with fusermount3
        assert select.select([pidfd], [], [], 60)[0], "the daemon did not exit within 60 s of SIGTERM"
        os.close(pidfd)
    finally:
        if mounts.mountpoints.mounted_at(str(mp)):
            subprocess.run(["fusermount3", "-u", "-z", str(mp)], capture_output=True, check=False)
        if daemon is not None and Path(f"/proc/{daemon}").exists():
            os.kill(daemon, signal.SIGKILL)
        if proc is not None:
            proc.wait(30)
    for dump in dumps.iterdir():
        environs[dump.name] = dump.read_bytes()
    assert any(name.startswith("stat.") for name in environs), environs.keys()  # the probe ran, through us
    assert any(name.startswith("fusermount3.") for name in environs), environs.keys()
    assert all(f"PATH={bin_dir}".encode() in e for e in environs.values())  # the recordings are the real env
    for name, environ in environs.items():  # (booleans: a failure must not print the environment)
        has_secret, has_access = secret.encode() in environ, access.encode() in environ
        assert not has_secret, f"the secret key is in the environment of {name}"
        assert not has_access, f"the access key is in the environment of {name}"


# -- signed URLs -------------------------------------------------------------------------------------


def _fetch(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            resp.read()
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_signed_urls_expire_when_they_say_and_cannot_be_retargeted(tmp_path: Path, s3_server: Any,
                                                                  store: BucketView) -> None:
    from s3regfs.driver import factory
    from s3regfs.middleware.cloudfront import CloudFrontMiddleware

    key_path, public_pem = generate_keypair(tmp_path)
    for name in ("a", "ab", "a2/x", "b", "A"):
        store.put(f"blobs/{name}", name.encode())
    clock = [1_800_000_000.0]
    driver = factory.create("s3", s3_server.driver_parameters(store.bucket, rootdirectory=store.root))
    with CloudFrontServer(s3_origin(s3_server.client(), store.bucket), {KEY_ID: public_pem},
                          now=lambda: clock[0]) as cdn:
        chain = CloudFrontMiddleware(driver, {"baseurl": cdn.url, "privatekey": str(key_path), "keypairid": KEY_ID,
                                              "duration": "90s"}, now=lambda: clock[0])
        try:
            url = chain.redirect_url("GET", "/blobs/a") or ""
            expires = int(urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["Expires"][0])
            assert expires == int(clock[0]) + 90
            clock[0] = expires - 1
            assert _fetch(url) == 200
            clock[0] = expires
            assert _fetch(url) == 403 and cdn.requests[-1].reason == "Expired"
            clock[0] = expires - 60
            split = urllib.parse.urlsplit(url)
            key = f"/{store.root}/blobs/a"
            for other in (f"/{store.root}/blobs/ab", f"/{store.root}/blobs/b", f"/{store.root}/blobs/A",
                          f"/{store.root}/blobs/a2/x", f"/{store.root}/blobs/a/../b", f"{key}/", f"{key}%2F..%2Fb"):
                retargeted = urllib.parse.urlunsplit(split._replace(path=other))
                assert _fetch(retargeted) == 403, other
            later = url.replace(f"Expires={expires}", f"Expires={expires + 3600}")
            assert _fetch(later) == 403 and cdn.requests[-1].reason == "InvalidSignature"
            assert _fetch(url + "&extra=1") == 403
            assert _fetch(url) == 200  # the untouched URL still works
        finally:
            chain.close()
