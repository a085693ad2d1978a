"""``s3regfs demo``: a local S3 server, a small real registry in it, mounted — in one command.

Owns the demo's sequence and its clean-up:

1. start SeaweedFS on loopback (:class:`~s3regfs.demo.localserver.LocalS3Server`,
   from the ``demo`` extra) and create a bucket;
2. write a small registry into it (:mod:`s3regfs.demo.registry`): the real
   ``docker-registry`` with its s3 driver and ``skopeo copy`` when both are
   installed, else the same layout through the s3 driver;
3. generate a throwaway CloudFront key pair and write a registry-style
   ``config.yml`` (storage s3, middleware cloudfront, an ``s3regfs:``
   section) in a private temporary directory;
4. mount it with ``s3regfs mount -f`` as a child (waiting for its
   ``READY=1``), print what to try, and wait for Ctrl-C/SIGTERM;
5. on the way out — always, also on errors — unmount (pending uploads finish
   first), stop the servers and delete the temporary directory.

``--check`` runs the same non-interactively, verifies what the mount shows
(the tag link, every blob's sha256, the signed URL of the xattr and of
``s3regfs url``) with one PASS/FAIL line each, and exits.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

import yaml

from s3regfs import exitcodes, logs, systemd
from s3regfs.demo import registry as demoregistry
from s3regfs.errors import UserError

BUCKET = "demo-registry"
BASEURL = "https://demo.cloudfront.example/"
KEYPAIRID = "K2DEMOKEYPAIRID"
URL_XATTR = "user.s3regfs.url"
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0


class _Stop(KeyboardInterrupt):
    """SIGTERM/SIGINT while the demo waits."""


def _start_server(stack: contextlib.ExitStack, out: TextIO) -> Any:
    from s3regfs.demo.localserver import LocalS3Server, LocalS3ServerError

    out.write("starting a local S3 server (SeaweedFS) on 127.0.0.1 ...\n")
    out.flush()
    server = LocalS3Server(stop_grace=8.0)
    stack.callback(server.stop)  # before start: Ctrl-C during the start must not leave it running
    try:
        server.start()
    except LocalS3ServerError as exc:
        first = str(exc).splitlines()[0]
        raise UserError(
            f"cannot start the local S3 server: {first}; install the demo extra: pip install 's3regfs[demo]'",
            exitcodes.STORAGE,
        ) from None
    logs.add_secret(server.secret_key)
    return server


def _populate(server: Any, params: dict[str, Any], workdir: Path, out: TextIO) -> demoregistry.DemoImage:
    if demoregistry.tools_available():
        from s3regfs.demo.localserver import free_ports

        out.write("pushing an image with docker-registry (its own s3 driver) and skopeo ...\n")
        out.flush()
        storage = demoregistry.s3_storage(server, params["bucket"])
        try:
            return demoregistry.push_with_registry(workdir, storage, free_ports(1)[0])
        except (demoregistry.DemoRegistryError, OSError, subprocess.SubprocessError) as exc:
            out.write(f"  (the real registry failed: {logs.redact(str(exc))}; writing the layout directly)\n")
    out.write("writing a registry layout through the s3 driver ...\n")
    from s3regfs.driver import factory

    driver = factory.create("s3", params)
    try:
        return demoregistry.write_layout(driver, workdir)
    finally:
        driver.close()


def _write_config(workdir: Path, params: dict[str, Any], key_path: Path) -> Path:
    storage = {k: v for k, v in params.items()}
    config = {
        "version": 0.1,
        "storage": {"s3": storage},
        "middleware": {
            "storage": [
                {
                    "name": "cloudfront",
                    "options": {
                        "baseurl": BASEURL,
                        "privatekey": str(key_path),
                        "keypairid": KEYPAIRID,
                        "duration": "20m",
                    },
                }
            ]
        },
        "s3regfs": {"cache_dir": str(workdir / "cache"), "metadata_ttl": "5s"},
    }
    path = workdir / "config.yml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        yaml.safe_dump(config, handle, sort_keys=False)
    return path


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "s3regfs", *args]


def _mount(
    config_path: Path, mountpoint: Path, logfile: Path, stack: contextlib.ExitStack
) -> subprocess.Popen[bytes]:
    """``s3regfs mount -f`` as a child (stopped by ``stack``); returns once it sent READY=1."""
    with systemd.NotifyListener() as listener, open(logfile, "ab") as log_out:
        proc = subprocess.Popen(
            _command("mount", "-f", "--config", str(config_path), str(mountpoint)),
            stdin=subprocess.DEVNULL,
            stdout=log_out,
            stderr=log_out,
            env=listener.child_environ(),
            start_new_session=True,
        )
        stack.callback(_stop_mount, proc, mountpoint)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if "READY=1" in listener.receive(0.2):
                return proc
            if proc.poll() is not None:
                raise UserError(f"the mount failed: {_tail(logfile)}", exitcodes.MOUNT)
        raise UserError(
            f"the mount did not answer within {READY_TIMEOUT:g}s: {_tail(logfile)}", exitcodes.MOUNT
        )


def _tail(logfile: Path) -> str:
    try:
        lines = [line for line in logfile.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "(no log)"
    return logs.redact(lines[-1] if lines else "(no log)")


def _stop_mount(proc: subprocess.Popen[bytes], mountpoint: Path) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    if os.path.ismount(mountpoint) or _stale(mountpoint):
        subprocess.run(["fusermount3", "-u", "-z", str(mountpoint)], capture_output=True, check=False)


def _stale(path: Path) -> bool:
    try:
        os.stat(path)
    except OSError:
        return True
    return False


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    stopping: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        if not stopping:  # the first signal stops the demo; later ones must not interrupt the clean-up
            stopping.append(signum)
            raise _Stop()

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


def _instructions(out: TextIO, mp: Path, cfg: Path, server: Any, image: demoregistry.DemoImage) -> None:
    blob = demoregistry.blob_path(image.layer_digests[0])
    out.write(f"""
s3regfs demo: a registry in a local S3 bucket, mounted at {mp}

  S3 server   {server.endpoint} (SeaweedFS), bucket {BUCKET}
  image       {image.repository}:{image.tag} ({len(image.blobs)} blobs), pushed by {image.pushed_by}
  config      {cfg} (the registry's own config.yml format)

Try, in another terminal:
  ls {mp}/docker/registry/v2/repositories/{image.repository}/_manifests/tags
  find {mp} -name data
  sha256sum {mp}/docker/registry/v2/blobs/sha256/*/*/data
  getfattr -n {URL_XATTR} {mp}{blob}
  s3regfs url --config {cfg} {blob}
  s3regfs check --config {cfg}
""")
    out.flush()


def run(mountpoint: str | None, *, check: bool, out: TextIO) -> int:
    """The demo; with ``check`` verify and return instead of waiting for Ctrl-C."""
    from s3regfs.middleware.keys import generate_keypair

    with _signals_raise(), contextlib.ExitStack() as stack:
        try:
            workdir = Path(tempfile.mkdtemp(prefix="s3regfs-demo-"))
            stack.callback(shutil.rmtree, workdir, True)
            server = _start_server(stack, out)
            server.create_bucket(BUCKET)
            params = server.driver_parameters(BUCKET)
            image = _populate(server, params, workdir, out)
            key_path, public_pem = generate_keypair(workdir)
            config_path = _write_config(workdir, params, key_path)
            mp = _mountpoint(mountpoint, workdir, stack)
            out.write(f"mounting it on {mp} ...\n")
            out.flush()
            proc = _mount(config_path, mp, workdir / "s3regfs.log", stack)
            _instructions(out, mp, config_path, server, image)
            if check:
                return verify(mp, config_path, image, public_pem, out)
            out.write("Press Ctrl-C to unmount and remove everything.\n")
            out.flush()
            code = proc.wait()
            out.write(f"the mount stopped by itself (exit {code}); see the log above\n")
            return exitcodes.MOUNT
        except _Stop:
            out.write("\nstopping: unmounting (pending uploads finish first), stopping the servers ...\n")
            return exitcodes.OK
        finally:
            out.flush()


def _mountpoint(requested: str | None, workdir: Path, stack: contextlib.ExitStack) -> Path:
    if requested is None:
        mp = workdir / "mnt"
        mp.mkdir()
        return mp
    mp = Path(requested).absolute()
    if not mp.exists():
        mp.mkdir(parents=True)
        stack.callback(_rmdir_quietly, mp)
    return mp


def _rmdir_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.rmdir()


# -- verification (--check) ------------------------------------------------------------


def verify(mp: Path, config_path: Path, image: demoregistry.DemoImage, public_pem: bytes, out: TextIO) -> int:
    """Check what the mount shows; one PASS/FAIL line per check."""
    repo = mp / "docker/registry/v2/repositories" / image.repository
    blob = demoregistry.blob_path(image.layer_digests[0])
    checks: list[tuple[str, Callable[[], str]]] = [
        ("tag", lambda: _check_tag(repo, image)),
        ("blobs", lambda: _check_blobs(mp, image)),
        ("find", lambda: _check_find(mp, image)),
        (
            f"getfattr -n {URL_XATTR}",
            lambda: _check_url(os.getxattr(mp / blob.lstrip("/"), URL_XATTR).decode(), blob, public_pem),
        ),
        ("s3regfs url", lambda: _check_url(_url_command(config_path, blob), blob, public_pem)),
    ]
    failed = 0
    for name, fn in checks:
        try:
            detail = fn()
        except Exception as exc:  # noqa: BLE001 - every failure is one FAIL line
            failed += 1
            out.write(f"FAIL  {name}: {logs.redact(' '.join(str(exc).split()))}\n")
        else:
            out.write(f"PASS  {name}: {detail}\n")
        out.flush()
    return exitcodes.CHECK_FAILED if failed else exitcodes.OK


def _check_tag(repo: Path, image: demoregistry.DemoImage) -> str:
    link = (repo / "_manifests/tags" / image.tag / "current/link").read_text()
    if link != image.manifest_digest:
        raise AssertionError(f"tag {image.tag} points at {link!r}, pushed {image.manifest_digest}")
    return f"{image.repository}:{image.tag} -> {link}"


def _check_blobs(mp: Path, image: demoregistry.DemoImage) -> str:
    for digest in image.blobs:
        data = (mp / demoregistry.blob_path(digest).lstrip("/")).read_bytes()
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise AssertionError(f"blob {digest}: content does not match its digest")
    return f"{len(image.blobs)} blobs, each sha256 matches its path"


def _check_find(mp: Path, image: demoregistry.DemoImage) -> str:
    found = sorted(
        str(Path(root, name).relative_to(mp))
        for root, _, files in os.walk(mp)
        for name in files
        if name == "data"
    )
    expected = sorted(demoregistry.blob_path(d).lstrip("/") for d in image.blobs)
    if found != expected:
        raise AssertionError(f"find shows {found}, expected {expected}")
    return f"{len(found)} data files"


def _url_command(config_path: Path, blob: str) -> str:
    result = subprocess.run(
        _command("url", "--config", str(config_path), blob),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}: {result.stderr.strip()}")
    return result.stdout.strip()


def _check_url(url: str, blob: str, public_pem: bytes) -> str:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    from s3regfs.middleware.cloudfront import canned_policy, cloudfront_b64decode

    base, _, query = url.partition("?")
    if base != BASEURL + blob.lstrip("/"):
        raise AssertionError(f"{base} is not {BASEURL}{blob.lstrip('/')}")
    fields = dict(urllib.parse.parse_qsl(query))
    if fields.get("Key-Pair-Id") != KEYPAIRID:
        raise AssertionError(f"Key-Pair-Id is {fields.get('Key-Pair-Id')!r}")
    expires = int(fields["Expires"])
    key = serialization.load_pem_public_key(public_pem)
    if not isinstance(key, rsa.RSAPublicKey):
        raise TypeError("the demo key is not an RSA key")
    key.verify(
        cloudfront_b64decode(fields["Signature"]),
        canned_policy(base, expires),
        padding.PKCS1v15(),
        hashes.SHA1(),
    )
    return f"CloudFront-signed, valid {expires - int(time.time())}s, signature verified"
