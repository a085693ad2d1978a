"""Loading a configuration: its sources, their precedence, and the validation of every value.

Owns the sources and their precedence (lowest first; docs/CONFIGURATION.md
says the same):

1. built-in defaults;
2. the registry's ``config.yml`` (``--config``): ``storage: s3:``/``s3aws:``
   with its parameters, and the ``middleware: storage:`` entries (``cloudfront``)
   in order; other registry sections are ignored, another storage driver is an
   error naming it, and ``version: 0.1`` must be present;
3. the s3regfs-only section ``s3regfs:`` of the same file (mount options);
4. the environment: ``REGISTRY_STORAGE...``/``REGISTRY_MIDDLEWARE_STORAGE_<i>...``
   exactly as the registry applies them (lexical order, YAML-decoded values),
   and ``S3REGFS_<OPTION>`` for the mount options (taken literally);
5. ``-o`` options (driver parameters by their upstream names, mount options,
   ``cloudfront.<option>``) and command-line flags (``--driver``,
   ``--log-level``, ``-f``, ``--systemd``), flags last.

Every bad value raises :class:`~s3regfs.errors.UserError` with one line that
names the option, where it came from (file and key, environment variable, or
``-o``) and how to fix it.  Secret values (access and secret keys, session
tokens) are registered with :func:`s3regfs.logs.add_secret`.  Nothing here
touches the network.  Also owns this process's environment as the other
modules see it (:func:`secret_environ`, :func:`environ_without`): the only
module that reads ``os.environ`` for configuration.

The typed result and the driver chain built from it are
:mod:`s3regfs.config.model`; the registry file format (YAML typing,
``REGISTRY_*`` overrides) is :mod:`s3regfs.config.registryfile`; the mount
options' table is :mod:`s3regfs.config.options`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from s3regfs import credentials, exitcodes, logs
from s3regfs.config.model import (
    CLI_DRIVERS,
    DEFAULT_DRIVER,
    S3_DRIVERS,
    S3_PRESIGN_MAX,
    SECRET_PARAMETERS,
    Config,
    DriverConfig,
    MiddlewareConfig,
    MountConfig,
    parameter_error,
    presigns_with_s3,
)
from s3regfs.config.options import (
    FUSE_FLAGS,
    FUSE_VALUED,
    MOUNT_OPTIONS,
    OptionValueError,
    is_ignored_mount_option,
)
from s3regfs.config.registryfile import (
    YamlInt,
    apply_registry_env,
    check_version,
    exposed_secret,
    is_secret_variable,
    parse_text,
    plain,
    read_file,
)
from s3regfs.driver.errors import CredentialPairError
from s3regfs.errors import UserError
from s3regfs.fs.options import FsOptions

log = logging.getLogger("s3regfs.config")  # the name users see in warnings (docs/CONFIGURATION.md)

RESERVED_STORAGE_KEYS = frozenset({"maintenance", "cache", "delete", "redirect", "tag"})
SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID")
SECTION = "s3regfs"
ENV_PREFIX = "S3REGFS_"
ENV_IGNORED_PREFIXES = ("S3REGFS_TEST_",)
CLOUDFRONT = "cloudfront"
UNSUPPORTED_MIDDLEWARE = frozenset({"redirect", "rewrite"})
FLAG_ONLY = frozenset({"foreground", "systemd"})


# -- extracting the sections -----------------------------------------------------------


@dataclass
class _Layered:
    """The merged, still untyped configuration, with the source of every value."""

    driver: str | None = None
    driver_source: str = "the default"
    parameters: dict[str, Any] = field(default_factory=dict)
    parameter_sources: dict[str, str] = field(default_factory=dict)
    middleware: list[tuple[str, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    option_sources: dict[str, str] = field(default_factory=dict)
    fuse: dict[str, str | None] = field(default_factory=dict)
    flags: dict[str, bool] = field(default_factory=dict)


def _source(sources: Mapping[tuple[str, ...], str], path: Sequence[Any], file_where: str) -> str:
    low = tuple(str(p).lower() for p in path)
    for n in range(len(low), 0, -1):
        if low[:n] in sources:
            return sources[low[:n]]
    return f"{file_where} ({'.'.join(str(p) for p in path)})"


def _storage(raw: dict[str, Any], sources: Mapping[tuple[str, ...], str], where: str, into: _Layered) -> None:
    storage = raw.get("storage")
    if storage is None:
        return
    src = _source(sources, ["storage"], where)
    if isinstance(storage, str):
        storage = {storage: {}}
    if not isinstance(storage, dict):
        raise UserError(
            f"{src}: storage must be a mapping with one driver (s3); fix the storage section",
            exitcodes.CONFIG,
        )
    drivers = [k for k in storage if not (isinstance(k, str) and k.lower() in RESERVED_STORAGE_KEYS)]
    if len(drivers) > 1:
        listed = ", ".join(str(d) for d in drivers)
        raise UserError(
            f"{src}: multiple storage drivers specified in configuration or environment: [{listed}]; keep only s3",
            exitcodes.CONFIG,
        )
    if not drivers:
        return
    name = drivers[0]
    params = storage[name]
    psrc = _source(sources, ["storage", name], where)
    if params is None:
        params = {}
    if not isinstance(name, str) or not isinstance(params, dict):
        raise UserError(
            f"{psrc}: the {name} driver's parameters must be a mapping; fix storage.{name}", exitcodes.CONFIG
        )
    into.driver, into.driver_source = name.lower(), psrc
    for key, value in params.items():
        if not isinstance(key, str):
            raise UserError(
                f"{psrc}: parameter name {key!r} is not a string; fix storage.{name}", exitcodes.CONFIG
            )
        if value is None:
            continue  # nil means "absent" upstream
        into.parameters[key] = plain(value, psrc)
        into.parameter_sources[key] = _source(sources, ["storage", name, key], where)


def _middleware(
    raw: dict[str, Any], sources: Mapping[tuple[str, ...], str], where: str, into: _Layered
) -> None:
    section = raw.get("middleware")
    if section is None:
        return
    src = _source(sources, ["middleware"], where)
    if not isinstance(section, dict):
        raise UserError(
            f"{src}: middleware must be a mapping (storage: [...]); fix the middleware section",
            exitcodes.CONFIG,
        )
    entries = section.get("storage")
    if entries is None:
        return
    if not isinstance(entries, list):
        raise UserError(
            f"{_source(sources, ['middleware', 'storage'], where)}: middleware.storage must be a list of "
            "entries (- name: cloudfront); fix it",
            exitcodes.CONFIG,
        )
    for index, entry in enumerate(entries):
        _middleware_entry(entry, index, sources, where, into)


def _middleware_entry(
    entry: Any, index: int, sources: Mapping[tuple[str, ...], str], where: str, into: _Layered
) -> None:
    path = ["middleware", "storage", index]
    src = _source(sources, path, where)
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise UserError(
            f"{src}: a middleware entry needs 'name: cloudfront' and 'options:'; fix the entry",
            exitcodes.CONFIG,
        )
    name = entry["name"]
    options = entry.get("options") or {}
    if not isinstance(options, dict) or not all(isinstance(k, str) for k in options):
        raise UserError(
            f"{src}: the options of middleware {name} must be a mapping; fix the entry", exitcodes.CONFIG
        )
    if name in UNSUPPORTED_MIDDLEWARE:
        log.warning("%s: storage middleware %s ignored: s3regfs applies only cloudfront", src, name)
        return
    if name != CLOUDFRONT:
        raise UserError(
            f"{src}: no storage middleware registered with name: {name}; s3regfs supports cloudfront "
            "(remove the entry)",
            exitcodes.CONFIG,
        )
    opt_sources = {k: _source(sources, path + ["options", k], where) for k in options}
    into.middleware.append(
        (name, {k: plain(v, src) for k, v in options.items() if v is not None}, opt_sources)
    )


def _section(raw: dict[str, Any], where: str, into: _Layered) -> None:
    section = raw.get(SECTION)
    if section is None:
        return
    if not isinstance(section, dict):
        raise UserError(
            f"{where} ({SECTION}): must be a mapping of mount options; fix the {SECTION} section",
            exitcodes.CONFIG,
        )
    for key, value in section.items():
        src = f"{where} ({SECTION}.{key})"
        if not isinstance(key, str) or key not in MOUNT_OPTIONS:
            raise UserError(
                f"{src}: unknown s3regfs option; use one of {', '.join(sorted(MOUNT_OPTIONS))}",
                exitcodes.CONFIG,
            )
        if value is None:
            continue
        into.options[key] = value
        into.option_sources[key] = src


def _section_env(environ: Mapping[str, str], into: _Layered) -> None:
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name.startswith(ENV_IGNORED_PREFIXES):
            continue
        key = name[len(ENV_PREFIX) :].lower()
        if key not in MOUNT_OPTIONS:
            log.warning("environment variable %s ignored: %s is not an s3regfs option", name, key)
            continue
        into.options[key] = environ[name]
        into.option_sources[key] = f"environment variable {name}"


# -- -o options ------------------------------------------------------------------------


def split_options(values: Sequence[str]) -> list[tuple[str, str | None]]:
    """``["ro,uid=1000", "bucket=b"]`` → ``[("ro", None), ("uid", "1000"), ("bucket", "b")]``."""
    items: list[tuple[str, str | None]] = []
    for value in values:
        for item in value.split(","):
            item = item.strip()
            if not item:
                continue
            key, eq, val = item.partition("=")
            items.append((key.strip().lower(), val.strip() if eq else None))
    return items


def _apply_o(items: list[tuple[str, str | None]], into: _Layered) -> None:
    for key, value in items:
        src = f"-o {key}"
        if is_ignored_mount_option(key):
            log.debug("-o %s: handled by mount(8)/systemd, ignored", key)
        elif key in ("ro", "rw"):
            if value is not None:
                raise UserError(f"{src}={value}: {key} takes no value; write -o {key}", exitcodes.CONFIG)
            into.options["read_only"] = key == "ro"
            into.option_sources["read_only"] = src
        elif key in FUSE_FLAGS or key in FUSE_VALUED:
            _fuse_option(key, value, into)
        elif key in MOUNT_OPTIONS:
            into.options[key] = "true" if value is None and MOUNT_OPTIONS[key].flag else value
            into.option_sources[key] = src
            if into.options[key] is None:
                raise UserError(f"{src}: needs a value; write -o {key}=VALUE", exitcodes.CONFIG)
        elif key.startswith(CLOUDFRONT + "."):
            _cloudfront_option(key[len(CLOUDFRONT) + 1 :], value, into)
        else:
            if value is None:
                raise UserError(
                    f"{src}: unknown option, or a driver parameter without a value; write -o {key}=VALUE "
                    "or see the options in CONFIGURATION.md (s3regfs --help says where it is)",
                    exitcodes.CONFIG,
                )
            into.parameters[key] = value
            into.parameter_sources[key] = src
            if key in SECRET_PARAMETERS:
                log.warning(
                    "-o %s: a secret on the command line is visible in ps; put it in the config file "
                    "or the environment (REGISTRY_STORAGE_S3_%s)",
                    key,
                    key.upper(),
                )


def _fuse_option(key: str, value: str | None, into: _Layered) -> None:
    if key in FUSE_FLAGS and value is not None:
        raise UserError(f"-o {key}={value}: {key} takes no value; write -o {key}", exitcodes.CONFIG)
    if key in FUSE_VALUED and not value:
        raise UserError(f"-o {key}: needs a value; write -o {key}=VALUE", exitcodes.CONFIG)
    into.fuse[key] = value


def _cloudfront_option(option: str, value: str | None, into: _Layered) -> None:
    src = f"-o {CLOUDFRONT}.{option}"
    if not option or value is None:
        raise UserError(
            f"{src}: needs an option name and a value; write -o {CLOUDFRONT}.baseurl=URL", exitcodes.CONFIG
        )
    if option == "awsregion":  # a list the middleware reads comma-separated: -o cannot carry commas
        value = value.replace(":", ",")
    for name, options, sources in into.middleware:
        if name == CLOUDFRONT:
            options[option] = value
            sources[option] = src
            return
    into.middleware.append((CLOUDFRONT, {option: value}, {option: src}))


# -- typing ----------------------------------------------------------------------------


def _typed_options(into: _Layered) -> tuple[dict[str, Any], dict[str, Any]]:
    fs_kwargs: dict[str, Any] = {}
    mount_kwargs: dict[str, Any] = {}
    for key, raw_value in into.options.items():
        option = MOUNT_OPTIONS[key]
        try:
            value = option.parse(raw_value)
        except OptionValueError as exc:
            raise UserError(
                f"{into.option_sources[key]}: {key}={_shown(raw_value)}: {exc}", exitcodes.CONFIG
            ) from None
        (fs_kwargs if option.target == "fs" else mount_kwargs)[option.field] = value
    return fs_kwargs, mount_kwargs


def _shown(value: Any) -> str:
    text = value.text if isinstance(value, YamlInt) and value.text else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _cross_check(fs: FsOptions, into: _Layered) -> None:
    if fs.readahead_min > fs.readahead_max:
        src = into.option_sources.get("readahead_min") or into.option_sources.get(
            "readahead_max", "the defaults"
        )
        raise UserError(
            f"{src}: readahead_min ({fs.readahead_min}) is larger than readahead_max ({fs.readahead_max}); "
            "lower readahead_min or raise readahead_max",
            exitcodes.CONFIG,
        )
    if fs.readahead_max > fs.readahead_budget:
        src = into.option_sources.get("readahead_max") or into.option_sources.get(
            "readahead_budget", "the defaults"
        )
        raise UserError(
            f"{src}: readahead_max ({fs.readahead_max}) is larger than readahead_budget ({fs.readahead_budget}); "
            "raise readahead_budget or lower readahead_max",
            exitcodes.CONFIG,
        )


def default_cache_dir(environ: Mapping[str, str]) -> str:
    """``/var/cache/s3regfs`` for root, ``$XDG_CACHE_HOME/s3regfs`` (``~/.cache/s3regfs``) otherwise."""
    if os.geteuid() == 0:
        return str(FsOptions.__dataclass_fields__["cache_dir"].default)
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "s3regfs")


# -- the driver ------------------------------------------------------------------------


def _choose_driver(into: _Layered, driver_flag: str | None) -> str:
    if driver_flag is not None:
        flag = driver_flag.lower()
        if flag not in CLI_DRIVERS:
            raise UserError(
                f"--driver {driver_flag}: unknown driver; use one of {', '.join(CLI_DRIVERS)}",
                exitcodes.USAGE,
            )
        if (
            into.driver is not None
            and into.driver not in (flag,)
            and not (into.driver in S3_DRIVERS and flag in S3_DRIVERS)
        ):
            log.info(
                "--driver %s replaces the %s driver of %s and its parameters",
                flag,
                into.driver,
                into.driver_source,
            )
            for key, src in list(into.parameter_sources.items()):
                if not src.startswith("-o "):
                    into.parameters.pop(key, None)
                    into.parameter_sources.pop(key, None)
        return flag
    if into.driver is None:
        return DEFAULT_DRIVER
    if into.driver not in S3_DRIVERS:
        raise UserError(
            f"{into.driver_source}: the {into.driver} storage driver cannot be mounted; s3regfs mounts the s3 "
            "(or s3aws) driver's bucket, so point --config at a registry that stores in S3",
            exitcodes.CONFIG,
        )
    return into.driver


def _validate_parameters(driver: DriverConfig) -> None:
    """Type-check the parameters now (no network), so errors come before any mount."""
    if driver.name not in S3_DRIVERS:
        if driver.parameters:
            key = min(driver.parameters)
            raise UserError(
                f"{driver.source_of(key) or key}: the {driver.name} driver takes no parameters; remove {key}",
                exitcodes.CONFIG,
            )
        return
    try:
        from s3regfs.driver.s3.params import from_parameters
    except ImportError:  # the s3 driver is not installed in this build
        return
    try:
        from_parameters(dict(driver.parameters))
    except CredentialPairError as exc:
        raise credentials.pair_error(driver, exc.given, exc.missing, exc.source) from None
    except (ValueError, TypeError) as exc:
        raise UserError(parameter_error(driver, exc), exitcodes.CONFIG) from None



# -- entry points ----------------------------------------------------------------------


def load(
    config_file: str | None = None,
    *,
    text: str | bytes | None = None,
    environ: Mapping[str, str] | None = None,
    options: Sequence[str] = (),
    driver: str | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Config:
    """Merge every source (see the module docstring) into a validated :class:`Config`.

    ``text`` stands for the content of ``config_file`` (tests); ``environ``
    defaults to ``os.environ``; ``options`` are the ``-o`` strings; ``driver``
    is ``--driver``; ``flags`` holds the other flags by option name
    (``log_level``, ``foreground``, ``systemd``).
    """
    env = dict(os.environ if environ is None else environ)
    where = f"config file {config_file or '<text>'}"
    raw: dict[str, Any] = {}
    if text is not None:
        raw = parse_text(text, where)
    elif config_file is not None:
        raw = read_file(config_file)
    warning = exposed_secret(config_file, raw) if text is None and config_file is not None else None
    if text is not None or config_file is not None:
        check_version(raw, where)
    sources: dict[tuple[str, ...], str] = {}
    apply_registry_env(raw, env, sources)
    into = _Layered()
    _storage(raw, sources, where, into)
    _middleware(raw, sources, where, into)
    _section(raw, where, into)
    _section_env(env, into)
    _apply_o(split_options(options), into)
    for key, value in (flags or {}).items():
        if value is None:
            continue
        if key in FLAG_ONLY:
            into.flags[key] = bool(value)
        else:
            into.options[key] = value
            into.option_sources[key] = "--" + key.replace("_", "-")
    return replace(_build(into, driver, env, config_file), warnings=(warning,) if warning else ())


def _build(
    into: _Layered, driver_flag: str | None, env: Mapping[str, str], config_file: str | None
) -> Config:
    name = _choose_driver(into, driver_flag)
    driver = DriverConfig(name, dict(into.parameters), dict(into.parameter_sources))
    middleware = tuple(MiddlewareConfig(n, dict(o), dict(s)) for n, o, s in into.middleware)
    fs_kwargs, mount_kwargs = _typed_options(into)
    fs_kwargs.setdefault("cache_dir", default_cache_dir(env))
    if mount_kwargs.get("view") == "oci":
        _oci_view_options(fs_kwargs, into)
    fs = FsOptions(**fs_kwargs)
    _cross_check(fs, into)
    mount_kwargs.update(into.flags, fuse_options=tuple(into.fuse.items()))
    mount = MountConfig(**mount_kwargs)
    if mount.systemd:
        mount = replace(mount, foreground=True)
    for key in SECRET_PARAMETERS:
        logs.add_secret(driver.parameters.get(key))
    for var in SECRET_ENV:
        logs.add_secret(env.get(var))
    _validate_parameters(driver)
    config = Config(driver, middleware, fs, mount, config_file, dict(into.option_sources))
    if fs.url_duration is not None and fs.url_duration > S3_PRESIGN_MAX and presigns_with_s3(config):
        raise UserError(
            f"{into.option_sources['url_duration']}: url_duration={_shown(into.options['url_duration'])}: S3 "
            "presigned URLs live at most 7 days (168h); use 168h or less, or configure middleware cloudfront "
            "for longer URLs",
            exitcodes.CONFIG,
        )
    return config


def _oci_view_options(fs_kwargs: dict[str, Any], into: _Layered) -> None:
    """``view=oci`` is read-only, everything in it is versioned (cache all of it), no walk-ahead (docs/VIEWS.md)."""
    if fs_kwargs.get("read_only") is False:
        raise UserError(
            f"{into.option_sources.get('read_only', 'rw')}: the oci view is read-only; "
            "drop rw (or mount view=raw to write)",
            exitcodes.USAGE,
        )
    fs_kwargs["read_only"] = True
    fs_kwargs.setdefault("immutable_prefixes", ("/",))
    # The view's walk is a walk of directories (no flat listing to gain from), and walking ahead
    # from a repository's parent would build the index.json of every repository below it.
    fs_kwargs["listing_walk_ahead"] = 0


def secret_environ() -> dict[str, str]:
    """This process's environment variables that hold credentials (no child process may inherit them)."""
    return {k: v for k, v in os.environ.items() if is_secret_variable(k)}


def drop_secret_environ() -> None:
    """Remove them from this process's environment, once read: every process it starts later inherits it."""
    for name in secret_environ():
        del os.environ[name]


def environ_without(*prefixes: str) -> dict[str, str]:
    """This process's environment without the variables starting with ``prefixes`` (for child processes)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


def field_names() -> list[str]:
    """The FsOptions fields (the docs test checks each has an option)."""
    return [f.name for f in fields(FsOptions)]
