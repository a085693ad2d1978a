"""The typed configuration and what is built from it: the driver chain.

Owns the result of loading a configuration (:class:`Config` with its
:class:`DriverConfig`, :class:`MiddlewareConfig`, :class:`MountConfig`; secret
parameters kept out of ``repr``), the driver names s3regfs mounts, and
:func:`build_driver`: the factory (with the mount options the s3 driver
applies, :func:`driver_parameters`; an s3 driver that found no credentials, or got half a key pair, is a
credentials error of :mod:`s3regfs.credentials`), then the middleware in configuration order, then the view
(``view=oci``: :class:`~s3regfs.view.oci.OciView`),
with every failure a one-line :class:`~s3regfs.errors.UserError` naming the
parameter or option and where it was set (:func:`parameter_error`).

Where the values come from, and in which precedence, is
:mod:`s3regfs.config.sources`; nothing here reads a file or the environment.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from s3regfs import credentials, exitcodes, logs
from s3regfs.errors import UserError
from s3regfs.fs.options import FsOptions
from s3regfs.view.oci import OciView

S3_DRIVERS = ("s3", "s3aws")
CLI_DRIVERS = ("s3", "s3aws", "inmemory")
DEFAULT_DRIVER = "s3"
SECRET_PARAMETERS = frozenset({"accesskey", "secretkey", "sessiontoken"})
S3_PRESIGN_MAX = 7 * 24 * 3600
"""The longest lifetime of an S3 (SigV4) presigned URL: S3 refuses ``X-Amz-Expires`` above 604800 s."""
DRIVER_OPTIONS = {"write_parts_in_flight": "partsinflight"}
"""Mount options that the s3 driver applies: option → the s3 parameter it sets when given."""

log = logging.getLogger("s3regfs.config")


# -- the typed result ------------------------------------------------------------------


def _redacted(parameters: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: ("***" if k.lower() in SECRET_PARAMETERS and v not in (None, "") else v)
        for k, v in parameters.items()
    }


@dataclass(frozen=True)
class DriverConfig:
    """The storage driver: its registered name and its (untyped, upstream) parameters."""

    name: str = DEFAULT_DRIVER
    parameters: Mapping[str, Any] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def __repr__(self) -> str:
        return f"DriverConfig(name={self.name!r}, parameters={_redacted(self.parameters)!r})"

    def source_of(self, key: str) -> str | None:
        """Where parameter ``key`` was set (None for a default)."""
        return self.sources.get(key)


@dataclass(frozen=True)
class MiddlewareConfig:
    """One ``middleware: storage:`` entry."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class MountConfig:
    """How the process mounts and logs (everything that is not the filesystem core's)."""

    foreground: bool = False
    systemd: bool = False
    allow_other: bool = False
    log_level: str = logs.DEFAULT_LEVEL
    log_file: str | None = None
    mount_timeout: float = 60.0
    metrics: str | None = None
    """``HOST:PORT`` where ``/metrics`` is served (Prometheus), or None (off)."""
    view: str = "raw"
    """What the mount shows: ``raw`` (the bucket) or ``oci`` (repositories as OCI layouts, docs/VIEWS.md)."""
    fuse_options: tuple[tuple[str, str | None], ...] = ()

    def fuse_kwargs(self) -> dict[str, str | bool]:
        """The pass-through FUSE options as mfusepy keyword arguments."""
        return {name: (True if value is None else value) for name, value in self.fuse_options}


@dataclass(frozen=True)
class Config:
    """Everything a command needs: driver, middleware chain, filesystem and mount options."""

    driver: DriverConfig = field(default_factory=DriverConfig)
    middleware: tuple[MiddlewareConfig, ...] = ()
    fs: FsOptions = field(default_factory=FsOptions)
    mount: MountConfig = field(default_factory=MountConfig)
    config_file: str | None = None
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)
    warnings: tuple[str, ...] = field(default=(), compare=False, repr=False)
    """For the command to log once logging is set up (a secret in a file others can read)."""

    @property
    def read_only(self) -> bool:
        return self.fs.read_only

    def middleware_entries(self) -> list[tuple[str, dict[str, Any]]]:
        """The ``[(name, options), ...]`` list :func:`s3regfs.middleware.wrap` takes."""
        return [(m.name, dict(m.options)) for m in self.middleware]

def presigns_with_s3(config: Config) -> bool:
    """True when URLs are S3 presigned URLs (at most :data:`S3_PRESIGN_MAX`): the s3 driver, no cloudfront."""
    return config.driver.name in S3_DRIVERS and not any(m.name == "cloudfront" for m in config.middleware)


def parameter_error(driver: DriverConfig, exc: BaseException) -> str:
    """One line for a driver-parameter error: the source of the parameter it names, the cause, the fix."""
    message = " ".join(str(exc).split())
    for key in sorted(driver.parameters, key=len, reverse=True):
        if re.search(rf"(?<![a-z0-9]){re.escape(key.lower())}(?![a-z0-9])", message.lower()):
            return f"{driver.source_of(key) or key}: {message}; correct or remove the value"
    missing = re.search(r"no (\w+) parameter provided", message)
    if missing:
        key = missing.group(1).lower()
        return (
            f"{message}; set it in the config file (storage.{driver.name}.{key}), the environment "
            f"(REGISTRY_STORAGE_{driver.name.upper()}_{key.upper()}) or with -o {key}=VALUE"
        )
    return (
        f"{driver.name} driver parameters: {message}; fix the storage.{driver.name} section or the -o options"
    )


# -- the driver chain ------------------------------------------------------------------


def driver_parameters(config: Config) -> dict[str, Any]:
    """The parameters the factory gets: the driver's, and for the s3 driver the mount options it applies.

    A mount option of :data:`DRIVER_OPTIONS` that was set (``write_parts_in_flight``) replaces the s3
    parameter it names (``partsinflight``); unset, the parameter or its default applies.
    """
    parameters = dict(config.driver.parameters)
    if config.driver.name not in S3_DRIVERS:
        return parameters
    for option, parameter in DRIVER_OPTIONS.items():
        if option not in config.sources:
            continue
        value = getattr(config.fs, option)
        if parameter in parameters and str(parameters[parameter]) != str(value):
            log.info(
                "%s: %s=%s replaces the s3 parameter %s=%s of %s",
                config.sources[option], option, value, parameter, parameters[parameter],
                config.driver.source_of(parameter) or parameter,
            )
        parameters[parameter] = value
    return parameters


def build_driver(config: Config) -> Any:
    """The driver chain of ``config``: factory → middleware, with errors as one-line UserErrors."""
    from s3regfs.driver import factory
    from s3regfs.driver.errors import CredentialPairError, InvalidStorageDriverError, StorageDriverError

    try:
        driver = factory.create(config.driver.name, driver_parameters(config))
    except InvalidStorageDriverError as exc:
        raise UserError(f"{exc}; use one of {', '.join(CLI_DRIVERS)}", exitcodes.CONFIG) from None
    except CredentialPairError as exc:
        raise credentials.pair_error(config.driver, exc.given, exc.missing, exc.source) from None
    except (ValueError, TypeError) as exc:
        raise UserError(parameter_error(config.driver, exc), exitcodes.CONFIG) from None
    except StorageDriverError as exc:
        raise UserError(
            f"cannot create the {config.driver.name} driver: {exc}; check the endpoint and credentials",
            exitcodes.STORAGE,
        ) from None
    if config.middleware:
        from s3regfs import middleware

        try:
            driver = middleware.wrap(driver, config.middleware_entries())
        except Exception as exc:  # noqa: BLE001 - every middleware failure is a configuration error
            driver.close()
            raise UserError(_middleware_error(config, exc), exitcodes.CONFIG) from None
    if config.mount.view == "oci":
        driver = OciView(driver, ttl=config.fs.metadata_ttl, blob_ttl=config.fs.digest_ttl)
    try:
        credentials.require(config.driver, driver)  # after the configuration errors of the middleware
    except UserError:
        driver.close()
        raise
    return driver


def _middleware_error(config: Config, exc: BaseException) -> str:
    message = " ".join(str(exc).split())
    for entry in config.middleware:
        for key in sorted(entry.options, key=len, reverse=True):
            if re.search(rf"(?<![a-z0-9]){re.escape(key.lower())}(?![a-z0-9])", message.lower()):
                return f"{entry.sources.get(key, key)}: {message}; correct the {entry.name} option {key}"
    return (
        f"{message}; check the middleware options (middleware.storage in the config file or -o cloudfront.*)"
    )

