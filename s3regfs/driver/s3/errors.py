"""The S3 error mapping of the s3 driver (docs/DRIVERS.md §S6).

Owns the reading of a botocore ``ClientError`` (:func:`error_code`,
:func:`http_status`) and the one mapping of S3 errors onto driver errors
(:func:`map_error`), shared by :mod:`.driver`, :mod:`.reader` and
:mod:`.writer` without importing one another.
"""

from __future__ import annotations

import botocore.exceptions

from s3regfs.driver.errors import PathNotFoundError


def error_code(exc: BaseException) -> str:
    """The S3 error code of a botocore ClientError ("" for anything else)."""
    if isinstance(exc, botocore.exceptions.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def http_status(exc: BaseException) -> int:
    """The HTTP status of a botocore ClientError (0 for anything else)."""
    if isinstance(exc, botocore.exceptions.ClientError):
        return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return 0


def map_error(path: str, exc: BaseException) -> BaseException:
    """The one error mapping: NoSuchKey / a bare 404 → PathNotFoundError(path); anything else as is."""
    code = error_code(exc)
    if code == "NoSuchKey" or (code in ("404", "NotFound") and http_status(exc) == 404):
        return PathNotFoundError(path)
    return exc
