"""The storage driver layer: the registry's StorageDriver contract in Python.

Re-exports the public API.  ``factory.create(name, params)`` builds a driver
(``inmemory``, ``s3``, ``s3aws``) wrapped in the validating
:class:`~s3regfs.driver.checked.CheckedDriver`.
"""

from s3regfs.driver.base import (
    PATH_RE,
    ZERO_TIME,
    FileInfo,
    FileWriter,
    MultipartUploads,
    StorageDriver,
    UploadInfo,
)
from s3regfs.driver.checked import CheckedDriver, is_valid_path
from s3regfs.driver.errors import (
    DriverError,
    DriverErrors,
    FilledBuffer,
    InvalidOffsetError,
    InvalidPathError,
    InvalidStorageDriverError,
    ObjectChangedError,
    ParameterError,
    PathNotFoundError,
    SkipDir,
    StorageDriverError,
    UnsupportedMethodError,
    WriterStateError,
)
from s3regfs.driver.wrapper import DriverWrapper

__all__ = [
    "PATH_RE",
    "ZERO_TIME",
    "CheckedDriver",
    "DriverError",
    "DriverErrors",
    "DriverWrapper",
    "FileInfo",
    "FileWriter",
    "FilledBuffer",
    "InvalidOffsetError",
    "InvalidPathError",
    "InvalidStorageDriverError",
    "MultipartUploads",
    "ObjectChangedError",
    "ParameterError",
    "PathNotFoundError",
    "SkipDir",
    "StorageDriver",
    "StorageDriverError",
    "UnsupportedMethodError",
    "UploadInfo",
    "WriterStateError",
    "is_valid_path",
]
