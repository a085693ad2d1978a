"""The s3 driver package: the boto3 driver, built by :func:`create` (the factory's ``s3`` and ``s3aws``).

Modules: :mod:`.params` (parameter validation), :mod:`.client` (the boto3
client and its tuning), :mod:`.errors` (the S3 error mapping), :mod:`.driver`
(the StorageDriver), :mod:`.reader` (streams and exact ranged reads),
:mod:`.writer` (the multipart FileWriter), :mod:`.aborts` (aborts retried in
the background), :mod:`.retries` (the retry policy from the parameters and the AWS settings).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from s3regfs.driver.base import UploadInfo
from s3regfs.driver.s3.client import shared_session
from s3regfs.driver.s3.driver import DRIVER_NAME, S3Driver
from s3regfs.driver.s3.params import S3Parameters, from_parameters
from s3regfs.driver.s3.retries import retry_policy

__all__ = ["DRIVER_NAME", "S3Driver", "S3Parameters", "UploadInfo", "create", "from_parameters"]


def create(parameters: Mapping[str, Any]) -> S3Driver:
    """Validate ``parameters`` and build the driver (unwrapped; the factory wraps it)."""
    params = from_parameters(parameters)
    session = shared_session(params.profile)
    return S3Driver(params, retry=retry_policy(params, session), session=session)
