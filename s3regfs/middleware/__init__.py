"""The storage-middleware registry (port of distribution's ``storagemiddleware`` package).

Owns the name → constructor table and :func:`wrap`, which applies the
``middleware.storage`` entries of a registry config in list order, each
wrapping the result of the previous one: ``driver = ctor(driver, options)``.

A constructor is ``ctor(driver, options) -> StorageDriver`` where ``options``
is the entry's string-keyed map of YAML-decoded values; it raises
:class:`~s3regfs.driver.errors.ParameterError` for a bad option. Any failure
is reported as upstream does: ``unable to configure storage middleware
(<name>): <error>`` (for an unknown name the error is ``no storage middleware
registered with name: <name>``).

Built in: ``cloudfront`` (:mod:`s3regfs.middleware.cloudfront`), registered
at import time. It must be the first entry (directly around the s3 driver),
as upstream: only the s3 driver has bucket keys.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from s3regfs.driver.base import StorageDriver
from s3regfs.driver.errors import ParameterError

Constructor = Callable[[StorageDriver, Mapping[str, Any]], StorageDriver]
Entry = tuple[str, Mapping[str, Any] | None]

_lock = threading.Lock()
_registry: dict[str, Constructor] = {}


class MiddlewareError(ParameterError):
    """A storage middleware could not be configured; the message says which and why."""

    def __init__(self, name: str, cause: BaseException | str) -> None:
        super().__init__(f"unable to configure storage middleware ({name}): {cause}")
        self.name = name
        self.cause = cause


def register(name: str, ctor: Constructor) -> None:
    """Register ``ctor`` under ``name``; a second registration of a name is an error (upstream text)."""
    with _lock:
        if name in _registry:
            raise ValueError(f"name already registered: {name}")
        _registry[name] = ctor


def names() -> list[str]:
    """The registered middleware names, sorted."""
    with _lock:
        return sorted(_registry)


def get(name: str) -> Constructor:
    """The constructor registered as ``name``; raise :class:`MiddlewareError` if none."""
    with _lock:
        ctor = _registry.get(name)
    if ctor is None:
        raise MiddlewareError(name, f"no storage middleware registered with name: {name}")
    return ctor


def wrap(driver: StorageDriver, entries: Iterable[Entry]) -> StorageDriver:
    """Apply ``[(name, options), ...]`` to ``driver`` in list order and return the outermost driver."""
    for name, options in entries:
        ctor = get(name)
        try:
            driver = ctor(driver, dict(options or {}))
        except Exception as exc:  # upstream wraps every constructor error
            raise MiddlewareError(name, exc) from exc
    return driver


def _register_builtin() -> None:
    from s3regfs.middleware import cloudfront

    register(cloudfront.NAME, cloudfront.new)


_register_builtin()
