"""``s3regfs check``: validate the configuration and reach the bucket, step by step.

Owns the check steps and their one-line reports (``PASS``/``FAIL``/``SKIP``
``step: detail``): the driver chain is built, the credential source is shown
(never a key), the root is listed, a probe object is written, read back and
deleted (only with ``--write``, and never on a read-only mount), and a URL is
signed (CloudFront when configured, else the S3 presigned URL).  Then the local
side of a mount: FUSE (``/dev/fuse`` opens, or ``fusermount3`` can open it for
a non-root user), ``user_allow_other`` in ``/etc/fuse.conf`` when a non-root
user asks for ``allow_other``, and a writable ``cache_dir``.  The caller has already loaded the
configuration (its failure is the first FAIL line).  Returns
:data:`~s3regfs.exitcodes.CREDENTIALS` if the credentials were missing or
refused, else :data:`~s3regfs.exitcodes.CHECK_FAILED` if a step failed.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Callable
from typing import TextIO

from s3regfs import config, credentials, exitcodes, logs
from s3regfs.driver import PathNotFoundError, StorageDriver
from s3regfs.errors import UserError

PROBE_PREFIX = "/s3regfs-check-"
DEVICE = "/dev/fuse"
FUSE_CONF = "/etc/fuse.conf"


def _line(exc: BaseException) -> str:
    return logs.redact(" ".join(str(exc).split()))


class _Report:
    def __init__(self, out: TextIO, cfg: config.Config) -> None:
        self.out = out
        self.cfg = cfg
        self.failed = 0
        self.code = exitcodes.OK
        self.driver: StorageDriver | None = None

    def step(self, name: str, fn: Callable[[], str], *, first_request: bool = False) -> bool:
        try:
            detail = fn()
        except UserError as exc:
            self._fail(name, _line(exc), exc.exit_code)
            return False
        except Exception as exc:  # noqa: BLE001 - every failure is a FAIL line
            refused = (
                credentials.refused_error(self.cfg.driver, self.driver, exc, first_request=first_request)
                if self.driver is not None
                else None
            )
            if refused is not None:
                self._fail(name, _line(refused), refused.exit_code)
            else:
                self._fail(name, f"{_line(exc)}; {_hint(exc)}", exitcodes.CHECK_FAILED)
            return False
        self._write("PASS", name, detail)
        return True

    def _fail(self, name: str, detail: str, code: int) -> None:
        if self.code in (exitcodes.OK, exitcodes.CHECK_FAILED):
            self.code = code if code == exitcodes.CREDENTIALS else exitcodes.CHECK_FAILED
        self._write("FAIL", name, detail)

    def skip(self, name: str, reason: str) -> None:
        self.out.write(f"SKIP  {name}: {reason}\n")

    def _write(self, status: str, name: str, detail: str) -> None:
        if status == "FAIL":
            self.failed += 1
        self.out.write(f"{status}  {name}: {detail}\n")
        self.out.flush()


def _hint(exc: BaseException) -> str:
    text = str(exc)
    if "AccessDenied" in text or "Forbidden" in text or "403" in text:
        return "check the credentials and the bucket policy (s3:ListBucket, s3:PutObject, s3:DeleteObject)"
    if "NoSuchBucket" in text:
        return "check the bucket name (the bucket must exist)"
    return "check regionendpoint, region and the network"


def run(cfg: config.Config, out: TextIO, *, write: bool = False) -> int:
    """Run every step (the write probe only with ``write``); print one line each; return the exit code."""
    report = _Report(out, cfg)
    out.write(
        f"PASS  configuration: driver {cfg.driver.name}"
        + (f", middleware {', '.join(m.name for m in cfg.middleware)}" if cfg.middleware else "")
        + (f", from {cfg.config_file}" if cfg.config_file else "")
        + "\n"
    )
    holder: dict[str, StorageDriver] = {}

    def build() -> str:
        holder["driver"] = config.build_driver(cfg)
        params = cfg.driver.parameters
        return f"bucket {params['bucket']}" if "bucket" in params else f"{cfg.driver.name} driver ready"

    if report.step("driver", build):
        _storage_steps(report, cfg, holder["driver"], write)
    report.step("FUSE", _fuse)
    if cfg.mount.allow_other:
        report.step("allow_other", _allow_other)
    report.step("cache directory", lambda: _cache_dir(cfg.fs.cache_dir))
    return report.code


def _storage_steps(report: _Report, cfg: config.Config, driver: StorageDriver, write: bool) -> None:
    report.driver = driver
    try:
        source = credentials.describe(cfg.driver, driver)
        if source is not None:
            report.step("credentials", lambda: source)
        report.step("list /", lambda: _list(driver), first_request=True)
        probe = f"{PROBE_PREFIX}{secrets.token_hex(6)}"
        if cfg.read_only:
            report.skip("write probe", "read-only (ro): nothing is written")
        elif not write:
            report.skip("write probe", "not asked; --write writes, reads back and deletes a 64-byte object at the root")
        else:
            report.step(f"write, read and delete {probe}", lambda: _probe(driver, probe))
        label = "CloudFront URL" if cfg.middleware else "presigned URL"
        if cfg.driver.name in config.S3_DRIVERS or cfg.middleware:
            report.step(label, lambda: _url(driver, cfg))
        else:
            report.skip("URL", f"the {cfg.driver.name} driver hands out no URLs")
    finally:
        driver.close()


def _fuse() -> str:
    """FUSE can mount for this user: /dev/fuse opens, or fusermount3 (setuid) opens it for a non-root user."""
    if not os.path.exists(DEVICE):
        raise UserError(f"{DEVICE} is missing; load the kernel module (modprobe fuse) or, in a container, pass the "
                        "device (--device /dev/fuse --cap-add SYS_ADMIN)")
    try:
        os.close(os.open(DEVICE, os.O_RDWR | os.O_CLOEXEC))
        why = ""
    except OSError as exc:
        why = exc.strerror or str(exc)
    if os.geteuid() == 0:
        if why:
            raise UserError(f"{DEVICE} cannot be opened ({why}); check the device node (character device 10,229) "
                            "and, in a container, its device rules")
        return f"{DEVICE} opens read-write"
    helper = shutil.which("fusermount3")
    if helper is None:
        raise UserError("fusermount3 is not installed; install the fuse3 package")
    if not why:
        return f"{DEVICE} opens read-write; {helper} mounts for this user"
    if os.stat(helper).st_mode & 0o4000:
        return f"{helper} is setuid root and opens {DEVICE} for this user"
    raise UserError(f"{DEVICE} cannot be opened ({why}) and {helper} is not setuid root; reinstall the fuse3 "
                    f"package (chmod u+s {helper}) or mount as root")


def _allow_other() -> str:
    """``allow_other`` for a non-root user needs ``user_allow_other`` in /etc/fuse.conf."""
    if os.geteuid() == 0:
        return "root may use allow_other without user_allow_other"
    try:
        with open(FUSE_CONF, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except FileNotFoundError:
        text = ""
    except OSError as exc:
        raise UserError(f"{FUSE_CONF} cannot be read ({exc.strerror}); make it readable, or drop allow_other") from None
    if any(line.split("#", 1)[0].strip() == "user_allow_other" for line in text.splitlines()):
        return f"user_allow_other is set in {FUSE_CONF}"
    raise UserError(f"allow_other is asked by a non-root user but {FUSE_CONF} has no user_allow_other; add the line "
                    f"user_allow_other to {FUSE_CONF} (as root), or drop allow_other")


def _cache_dir(path: str) -> str:
    """``cache_dir`` is a writable directory, or can be created."""
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UserError(f"cache_dir {path}: {existing} is not a directory; choose another cache_dir")
    if existing == path:
        try:
            tempfile.TemporaryFile(dir=path).close()
        except OSError as exc:
            raise UserError(f"cache_dir {path} is not writable ({exc.strerror}); make it writable for this user "
                            "(chown) or choose another cache_dir") from None
        return f"{path} is writable"
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"cache_dir {path} does not exist and {existing} is not writable; create it (mkdir -p "
                        f"{path}, then chown it to this user) or choose another cache_dir")
    return f"{path} does not exist yet; it will be created in {existing}"


def _list(driver: StorageDriver) -> str:
    try:
        entries = driver.list("/")
    except PathNotFoundError:
        return "the bucket is empty"
    shown = ", ".join(sorted(entries)[:5]) + (", ..." if len(entries) > 5 else "")
    return f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}" + (f" ({shown})" if entries else "")


def _probe(driver: StorageDriver, path: str) -> str:
    data = secrets.token_bytes(64)
    driver.put_content(path, data)
    try:
        if driver.get_content(path) != data:
            raise RuntimeError("read back different bytes than were written")
    finally:
        driver.delete(path)
    try:
        driver.stat(path)
    except PathNotFoundError:
        return "64 bytes written, read back, deleted"
    raise RuntimeError("the probe object is still there after delete")


def _url(driver: StorageDriver, cfg: config.Config) -> str:
    url = str(driver.redirect_url("GET", "/docker/registry/v2/blobs") or "")
    if not url:
        raise UserError(f"the {cfg.driver.name} driver returned no URL; check the middleware options")
    return url.split("?", 1)[0] + ("?... (signed)" if "?" in url else "")
