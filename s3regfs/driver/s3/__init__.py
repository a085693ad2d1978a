"""The s3 driver package: the boto3 driver, built by :func:`create` (the factory's ``s3`` and ``s3aws``).

Modules: :mod:`.params` (parameter validation), :mod:`.client` (the boto3
client and its tuning), :mod:`.errors` (the S3 error mapping), :mod:`.driver`
(the StorageDriver), :mod:`.reader` (streams and exact ranged reads),
:mod:`.writer` (the multipart FileWriter), :mod:`.aborts` (aborts retried in
the background).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from s3regfs.driver.retry import DEFAULT_POLICY
from s3regfs.driver.base import UploadInfo
from s3regfs.driver.s3.driver import DRIVER_NAME, S3Driver
from s3regfs.driver.s3.params import S3Parameters, from_parameters

__all__ = ["DRIVER_NAME", "S3Driver", "S3Parameters", "UploadInfo", "create", "from_parameters"]


def create(parameters: Mapping[str, Any]) -> S3Driver:
    """Validate ``parameters`` and build the driver (unwrapped; the factory wraps it)."""
    params = from_parameters(parameters)
    return S3Driver(params, retry=dataclasses.replace(DEFAULT_POLICY, deadline=float(params.retrydeadline)))
