"""``s3regfs url``: the redirect URL the registry would hand out for a driver path, printed.

Owns the checks of the command's arguments (a lifetime S3 can presign, a driver path, a client
address), each a one-line :class:`~s3regfs.errors.UserError`, and the signing through the driver
chain: the CloudFront middleware when configured (with ``ipfilteredby``, a ``client_ip`` inside
the AWS ranges gets the S3 URL, as the registry does per request), else the S3 presigned URL.
"""

from __future__ import annotations

from typing import TextIO

from s3regfs import config, exitcodes
from s3regfs.driver import InvalidPathError, is_valid_path
from s3regfs.errors import UserError
from s3regfs.middleware.ipfilter import parse_client_ip


def run(cfg: config.Config, path: str, *, expires: float | None, duration: str | None, method: str,
        client_ip: str | None, out: TextIO) -> int:
    """Print the URL of ``path`` (``expires``: seconds from ``--duration``, given as ``duration``)."""
    if expires == 0:
        raise UserError("--duration 0s: a URL must live longer than 0s; use e.g. 20m", exitcodes.USAGE)
    if expires is not None and expires > config.S3_PRESIGN_MAX and config.presigns_with_s3(cfg):
        raise UserError(
            f"--duration {duration}: S3 presigned URLs live at most 7 days (168h); use --duration 168h "
            "or less, or configure middleware cloudfront for longer URLs",
            exitcodes.USAGE,
        )
    if not is_valid_path(path):
        raise UserError(
            f"{path}: not a driver path; use an absolute path whose components are letters, digits, "
            "'.', '_' and '-' (no '.' or '..' component), "
            "e.g. /docker/registry/v2/blobs/sha256/ab/<digest>/data",
            exitcodes.USAGE,
        )
    if client_ip is not None and parse_client_ip(client_ip) is None:
        raise UserError(f"--client-ip {client_ip}: not an IP address; use e.g. 203.0.113.7", exitcodes.USAGE)
    driver = config.build_driver(cfg)
    try:
        url = driver.redirect_url(method, path, client_ip=client_ip, expires_in=expires)
    except InvalidPathError:
        raise UserError(f"{path}: not a driver path; use e.g. /docker/registry/v2/...", exitcodes.USAGE) from None
    finally:
        driver.close()
    if not url:
        raise UserError(
            f"the {cfg.driver.name} driver hands out no URLs; use the s3 driver (or configure middleware cloudfront)",
            exitcodes.CONFIG,
        )
    out.write(url + "\n")
    return exitcodes.OK
