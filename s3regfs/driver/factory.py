"""Driver registration and creation (port of ``factory``).

The built-in drivers are named in the static table :data:`BUILTIN` (name → module and
constructor), imported on first use so that an inmemory driver never loads boto3; the
drivers themselves do not import this module (no import cycle).  Other constructors
register under a name with :func:`register`.  :func:`create` builds a driver from a
parameter dict and wraps it in :class:`CheckedDriver`, as the registry wraps every driver
in ``base.Base``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from s3regfs.driver.base import StorageDriver
from s3regfs.driver.checked import CheckedDriver
from s3regfs.driver.errors import InvalidStorageDriverError

Constructor = Callable[[Mapping[str, Any]], StorageDriver]

BUILTIN: dict[str, tuple[str, str]] = {
    "inmemory": ("s3regfs.driver.inmemory", "from_parameters"),
    "s3": ("s3regfs.driver.s3", "create"),
    "s3aws": ("s3regfs.driver.s3", "create"),
}
"""The built-in drivers: name → (module, constructor function); ``s3`` and ``s3aws`` are one driver."""

_registry: dict[str, Constructor] = {}


def register(name: str, constructor: Constructor) -> None:
    """Register ``constructor`` under ``name``; a second registration (or a built-in name) is an error."""
    if name in _registry or name in BUILTIN:
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
    """Import the built-in drivers of :data:`BUILTIN` not loaded yet and register their constructors."""
    for name, (module, constructor) in BUILTIN.items():
        if name not in _registry:
            _registry[name] = getattr(importlib.import_module(module), constructor)
