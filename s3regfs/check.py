"""``s3regfs check``: validate the configuration and reach the bucket, step by step.

Owns the check steps and their one-line reports (``PASS``/``FAIL``/``SKIP``
``step: detail``): the driver chain is built, the credential source is shown
(never a key), the root is listed, a probe object is written, read back and
deleted (unless the mount is read-only), and a URL is signed (CloudFront when
configured, else the S3 presigned URL).  The caller has already loaded the
configuration (its failure is the first FAIL line).  Returns
:data:`~s3regfs.exitcodes.CREDENTIALS` if the credentials were missing or
refused, else :data:`~s3regfs.exitcodes.CHECK_FAILED` if a step failed.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import TextIO

from s3regfs import config, credentials, exitcodes, logs
from s3regfs.driver import PathNotFoundError, StorageDriver
from s3regfs.errors import UserError

PROBE_PREFIX = "/s3regfs-check-"


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


def run(cfg: config.Config, out: TextIO) -> int:
    """Run every step; print one line each; return OK or CHECK_FAILED."""
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

    if not report.step("driver", build):
        return report.code
    driver = report.driver = holder["driver"]
    try:
        source = credentials.describe(cfg.driver, driver)
        if source is not None:
            report.step("credentials", lambda: source)
        report.step("list /", lambda: _list(driver), first_request=True)
        probe = f"{PROBE_PREFIX}{secrets.token_hex(6)}"
        if cfg.read_only:
            report.skip("write probe", "read-only (ro): nothing is written")
        else:
            report.step(f"write, read and delete {probe}", lambda: _probe(driver, probe))
        label = "CloudFront URL" if cfg.middleware else "presigned URL"
        if cfg.driver.name in config.S3_DRIVERS or cfg.middleware:
            report.step(label, lambda: _url(driver, cfg))
        else:
            report.skip("URL", f"the {cfg.driver.name} driver hands out no URLs")
    finally:
        driver.close()
    return report.code


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
