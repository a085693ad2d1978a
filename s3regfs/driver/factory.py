"""Driver registration and creation (port of ``factory``).

Drivers register a constructor under one or more names; :func:`create`
builds one from a parameter dict and wraps it in :class:`CheckedDriver`, as
the registry wraps every driver in ``base.Base``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from s3regfs.driver.base import StorageDriver
from s3regfs.driver.checked import CheckedDriver
from s3regfs.driver.errors import InvalidStorageDriverError

Constructor = Callable[[Mapping[str, Any]], StorageDriver]

_registry: dict[str, Constructor] = {}


def register(name: str, constructor: Constructor) -> None:
    """Register ``constructor`` under ``name``; a second registration is an error."""
    if name in _registry:
        raise ValueError(f"storage driver {name!r} registered twice")
    _registry[name] = constructor


def names() -> list[str]:
    """The registered driver names, sorted."""
    _load_builtin()
    return sorted(_registry)


def create(name: str, parameters: Mapping[str, Any] | None = None) -> StorageDriver:
    """Build the driver registered as ``name``, wrapped in :class:`CheckedDriver`."""
    _load_builtin()
    try:
        constructor = _registry[name]
    except KeyError:
        raise InvalidStorageDriverError(name) from None
    return CheckedDriver(constructor(dict(parameters or {})))


def _load_builtin() -> None:
    """Import the built-in drivers so that they register themselves."""
    import s3regfs.driver.inmemory
    import s3regfs.driver.s3  # noqa: F401
