"""The registry's ``config.yml`` format: YAML decoding, the file, and ``REGISTRY_*`` overrides.

Owns reading configuration the way the registry reads it (docs/CONFIGURATION.md), for
:mod:`s3regfs.config.sources`, which types and validates the result:

* YAML decoding with the registry's typing: no timestamps (Go's YAML keeps
  ``2024-01-01`` a string), duplicate keys refused (Go's YAML refuses them),
  integers that remember their spelling (so a mode written ``644`` is octal);
* the top-level mapping of the file and its ``version: 0.1``;
* the ``REGISTRY_STORAGE...`` and ``REGISTRY_MIDDLEWARE_STORAGE_<i>...``
  environment overrides: lexical order, case-insensitive keys, new keys
  lower-cased, YAML-decoded values, list indices at most the current length.

Also owns :func:`exposed_secret`: the warning for a file that holds a secret
(``secretkey``, ``sessiontoken``) and that group or others can read; and
:func:`is_secret_variable`: which environment variables hold credentials
(kept out of the environment of child processes).

Every failure is a one-line :class:`~s3regfs.errors.UserError` naming the
file (and line) or the variable.  It takes the environment as an argument:
only :mod:`s3regfs.config.sources` reads ``os.environ``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from s3regfs import exitcodes
from s3regfs.errors import UserError

SUPPORTED_VERSION = "0.1"
SECRET_KEYS = frozenset({"secretkey", "sessiontoken"})
SECRET_VARIABLE_WORDS = frozenset({"ACCESSKEY", "SECRETKEY", "SESSIONTOKEN"})
AWS_SECRET_VARIABLES = frozenset(
    {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"}
)
REGISTRY_ENV_PREFIX = "REGISTRY_"


# -- YAML ------------------------------------------------------------------------------


class YamlInt(int):
    """A YAML integer that remembers how it was written (``644`` vs ``0644``), for modes."""

    text: str = ""


class _Loader(yaml.SafeLoader):
    """SafeLoader with the registry's typing: no timestamps, duplicate keys refused."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> YamlInt:
    value = YamlInt(loader.construct_yaml_int(node))
    value.text = str(node.value)
    return value


def _construct_map(loader: yaml.SafeLoader, node: yaml.MappingNode) -> Any:
    data: dict[Any, Any] = {}
    yield data
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in data
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "found an unhashable key", key_node.start_mark
            ) from None
        if duplicate:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        data[key] = loader.construct_object(value_node, deep=True)


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)


def yaml_decode(text: str | bytes, where: str) -> Any:
    """Decode YAML the way the registry does; UserError naming ``where`` on failure."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"{where}: invalid YAML{at}: {problem}; fix the syntax", exitcodes.CONFIG) from None
    except (RecursionError, ValueError, OverflowError) as exc:
        raise UserError(
            f"{where}: cannot decode the YAML ({type(exc).__name__}); simplify it", exitcodes.CONFIG
        ) from None


def plain(value: Any, where: str, _stack: tuple[int, ...] = ()) -> Any:
    """``value`` with YAML ints made plain ints; recursive aliases refused."""
    if isinstance(value, (dict, list)):
        if id(value) in _stack:
            raise UserError(f"{where}: a YAML alias refers to itself; remove the recursion", exitcodes.CONFIG)
        stack = _stack + (id(value),)
        if isinstance(value, dict):
            return {k: plain(v, where, stack) for k, v in value.items()}
        return [plain(v, where, stack) for v in value]
    if isinstance(value, YamlInt):
        return int(value)
    return value


# -- reading the file ------------------------------------------------------------------


def read_file(path: str) -> dict[str, Any]:
    """The top-level mapping of the YAML file at ``path``."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise UserError(
            f"config file {path}: {reason}; pass the path of the registry's config.yml with --config",
            exitcodes.CONFIG,
        ) from None
    return parse_text(data, f"config file {path}")


def is_secret_variable(name: str) -> bool:
    """The static AWS credentials (``AWS_SECRET_ACCESS_KEY``, ...), ``REGISTRY_..._SECRETKEY`` and such."""
    if name in AWS_SECRET_VARIABLES:
        return True
    return name.startswith(REGISTRY_ENV_PREFIX) and name.rsplit("_", 1)[-1].upper() in SECRET_VARIABLE_WORDS


def exposed_secret(path: str, raw: Mapping[str, Any]) -> str | None:
    """A warning when the file at ``path`` holds a secret and group or others can read it; else None."""
    found = _secret_at(raw, ())
    if found is None:
        return None
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None
    if not mode & 0o044:
        return None
    return (
        f"config file {path} holds a secret ({found}) and is readable by group or others (mode {mode:04o}); "
        f"restrict it with: chmod 600 {path}"
    )


def _secret_at(node: Any, path: tuple[str, ...]) -> str | None:
    """The dotted path of the first non-empty ``secretkey``/``sessiontoken`` under ``node``."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        here = (*path, str(key))
        if isinstance(key, str) and key.lower() in SECRET_KEYS and value not in (None, ""):
            return ".".join(here)
        found = _secret_at(value, here)
        if found is not None:
            return found
    return None


def parse_text(text: str | bytes, where: str) -> dict[str, Any]:
    """The top-level mapping of YAML ``text`` (``where`` names it in errors)."""
    raw = yaml_decode(text, where)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise UserError(
            f"{where}: the top level is a {kind(raw)}, not a mapping; use the registry's config.yml layout "
            "(version, storage, middleware)",
            exitcodes.CONFIG,
        )
    plain(raw, where)  # refuses recursive aliases early
    return raw


def kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    return type(value).__name__


def check_version(raw: Mapping[str, Any], where: str) -> None:
    if "version" not in raw:
        raise UserError(
            f"{where}: no 'version' key; add 'version: 0.1' at the top, as the registry requires",
            exitcodes.CONFIG,
        )
    version = raw["version"]
    text = str(version).strip() if not isinstance(version, bool) else ""
    if isinstance(version, float):
        text = repr(version)
    if text != SUPPORTED_VERSION:
        raise UserError(
            f"{where}: version {version!r} is not supported; s3regfs reads registry configuration "
            f"version {SUPPORTED_VERSION} (write 'version: 0.1')",
            exitcodes.CONFIG,
        )


# -- registry environment overrides ----------------------------------------------------


def _applies(parts: list[str]) -> bool:
    low = [p.lower() for p in parts]
    return low[:1] == ["storage"] or low[:2] == ["middleware", "storage"]


def apply_registry_env(
    raw: dict[str, Any], environ: Mapping[str, str], sources: dict[tuple[str, ...], str]
) -> None:
    """Apply ``REGISTRY_STORAGE*``/``REGISTRY_MIDDLEWARE_STORAGE*`` as the registry does."""
    for name in sorted(environ):
        if not name.startswith(REGISTRY_ENV_PREFIX):
            continue
        parts = name[len(REGISTRY_ENV_PREFIX) :].split("_")
        if not _applies(parts) or any(p == "" for p in parts):
            continue
        where = f"environment variable {name}"
        value = plain(yaml_decode(environ[name], where), where)
        path = _set_path(raw, parts, value, where)
        sources[tuple(p.lower() if isinstance(p, str) else str(p) for p in path)] = where


def _match_key(node: dict[Any, Any], part: str) -> Any:
    for key in node:
        if isinstance(key, str) and key.lower() == part.lower():
            return key
    return part.lower()


def _set_path(raw: dict[str, Any], parts: list[str], value: Any, where: str) -> list[Any]:
    node: Any = raw
    path: list[Any] = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, dict):
            key = _match_key(node, part)
            if [str(p).lower() for p in path + [key]] == ["storage"] and isinstance(value, str) and last:
                value = {value: {}}  # REGISTRY_STORAGE=s3 → storage: {s3: {}}
            if last:
                if value is None:
                    node.pop(key, None)
                else:
                    node[key] = value
                return path + [key]
            child = node.get(key)
            if child is None:
                is_list = [str(p).lower() for p in path + [key]] == ["middleware", "storage"]
                child = [] if is_list else {}
                node[key] = child
            elif isinstance(child, str) and [str(p).lower() for p in path + [key]] == ["storage"]:
                child = {child: {}}
                node[key] = child
            node, path = child, path + [key]
        elif isinstance(node, list):
            if not part.isdigit():
                raise UserError(
                    f"{where}: non-numeric index {part!r}; list entries are numbered 0, 1, ...",
                    exitcodes.CONFIG,
                )
            index = int(part)
            if index > len(node):
                raise UserError(
                    f"{where}: undefined index {index} (the list has {len(node)} entries); number entries "
                    "from 0 without gaps",
                    exitcodes.CONFIG,
                )
            if index == len(node):
                node.append({})
            if last:
                node[index] = value
                return path + [index]
            if not isinstance(node[index], (dict, list)):
                node[index] = {}
            node, path = node[index], path + [index]
        else:
            dotted = ".".join(str(p) for p in path)
            raise UserError(
                f"{where}: {dotted} is a {kind(node)}, so {part.lower()} cannot be set inside it; "
                "remove the variable or the conflicting value",
                exitcodes.CONFIG,
            )
    return path
