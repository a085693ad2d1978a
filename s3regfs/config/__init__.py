"""Configuration: the one place where s3regfs settings are read, typed and validated.

The package's public names, for ``from s3regfs import config``:
:func:`load` (every source merged into a :class:`Config`), :func:`build_driver`
(the driver chain of a :class:`Config`) and the process-environment helpers.
The parts:

* :mod:`s3regfs.config.sources`: the sources, their precedence, validation (``load``);
* :mod:`s3regfs.config.model`: the typed result and the driver chain (``build_driver``);
* :mod:`s3regfs.config.registryfile`: the registry's ``config.yml`` format and ``REGISTRY_*`` overrides;
* :mod:`s3regfs.config.options`: the mount options' table.
"""

from s3regfs.config.model import (
    CLI_DRIVERS,
    S3_DRIVERS,
    S3_PRESIGN_MAX,
    Config,
    DriverConfig,
    MiddlewareConfig,
    MountConfig,
    build_driver,
    driver_parameters,
    parameter_error,
    presigns_with_s3,
)
from s3regfs.config.sources import (
    default_cache_dir,
    drop_secret_environ,
    environ_without,
    load,
    secret_environ,
    split_options,
)

__all__ = [
    "CLI_DRIVERS",
    "S3_DRIVERS",
    "S3_PRESIGN_MAX",
    "Config",
    "DriverConfig",
    "MiddlewareConfig",
    "MountConfig",
    "build_driver",
    "default_cache_dir",
    "driver_parameters",
    "drop_secret_environ",
    "environ_without",
    "load",
    "parameter_error",
    "presigns_with_s3",
    "secret_environ",
    "split_options",
]
