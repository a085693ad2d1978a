"""``s3regfs uploads list|abort``: the in-progress multipart uploads under the root.

Owns the listing and aborting of the multipart uploads that a registry (or
a crashed writer) leaves behind, through the driver chain's
:class:`~s3regfs.driver.base.MultipartUploads` (``multipart_uploads()``,
extension 5 of docs/DRIVERS.md: ``list_uploads(path)`` and
``abort_upload(key, upload_id)``); a driver without them is a configuration
error.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from collections.abc import Sequence
from typing import TextIO

from s3regfs import config, credentials, exitcodes
from s3regfs.driver import MultipartUploads, StorageDriverError, UploadInfo, is_valid_path
from s3regfs.durations import format_duration
from s3regfs.errors import UserError

log = logging.getLogger(__name__)

DEFAULT_ABORT_AGE = "168h"
"""The registry's own upload-purging age (``maintenance: uploadpurging: age``)."""


def _age(initiated: datetime, now: datetime) -> float:
    if initiated.tzinfo is None:
        initiated = initiated.replace(tzinfo=UTC)
    return (now - initiated).total_seconds()


def run(cfg: config.Config, action: str, path: str, older_than: float, *, dry_run: bool, out: TextIO) -> int:
    """List or abort the uploads under ``path`` started at least ``older_than`` seconds ago."""
    if not is_valid_path(path, allow_root=True):
        raise UserError(
            f"{path}: not a driver path; use / or e.g. /docker/registry/v2/repositories", exitcodes.USAGE
        )
    driver = config.build_driver(cfg)
    try:
        inner = driver.multipart_uploads()
        if inner is None:
            raise UserError(
                f"the {cfg.driver.name} driver has no multipart uploads; use the s3 driver", exitcodes.CONFIG
            )
        try:
            uploads = inner.list_uploads(path)
        except Exception as exc:  # noqa: BLE001 - any S3 failure: one line
            refused = credentials.refused_error(cfg.driver, driver, exc, first_request=True)
            if refused is not None:
                raise refused from None
            raise UserError(
                f"cannot list the uploads: {_one_line(exc)}; run s3regfs check", exitcodes.STORAGE
            ) from None
        now = datetime.now(UTC)
        selected = [u for u in uploads if _age(u.initiated, now) >= older_than]
        if action == "list":
            return _list(selected, now, out)
        return _abort(inner, selected, now, dry_run, out)
    except StorageDriverError as exc:
        raise UserError(f"{_one_line(exc)}; run s3regfs check", exitcodes.STORAGE) from None
    finally:
        driver.close()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _row(upload: UploadInfo, now: datetime) -> str:
    age = format_duration(round(_age(upload.initiated, now)))
    where = upload.path if upload.path is not None else f"(key {upload.key})"
    return f"{upload.initiated.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}  {age:>12}  {upload.upload_id}  {where}"


def _list(uploads: Sequence[UploadInfo], now: datetime, out: TextIO) -> int:
    if not uploads:
        out.write("no in-progress uploads\n")
        return exitcodes.OK
    out.write(f"{'INITIATED':20}  {'AGE':>12}  UPLOAD-ID  PATH\n")
    out.writelines(_row(upload, now) + "\n" for upload in uploads)
    out.write(f"{len(uploads)} in-progress upload(s)\n")
    return exitcodes.OK


def _abort(
    inner: MultipartUploads, uploads: Sequence[UploadInfo], now: datetime, dry_run: bool, out: TextIO
) -> int:
    failed = 0
    for upload in uploads:
        if dry_run:
            out.write(f"would abort  {_row(upload, now)}\n")
            continue
        try:
            inner.abort_upload(upload.key, upload.upload_id)
        except Exception as exc:  # noqa: BLE001 - report and go on with the others
            failed += 1
            out.write(f"FAILED  {_row(upload, now)}: {_one_line(exc)}\n")
            continue
        log.info("aborted upload %s of %s", upload.upload_id, upload.key)
        out.write(f"aborted  {_row(upload, now)}\n")
    verb = "would abort" if dry_run else "aborted"
    out.write(f"{verb} {len(uploads) - failed} upload(s)" + (f", {failed} failed\n" if failed else "\n"))
    return exitcodes.STORAGE if failed else exitcodes.OK
