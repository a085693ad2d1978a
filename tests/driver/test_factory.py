"""Driver registration and creation (port of ``factory``)."""

from __future__ import annotations

from typing import Any, Mapping

import pytest

from s3regfs.driver import CheckedDriver, InvalidStorageDriverError, ParameterError, factory
from s3regfs.driver.inmemory import InMemoryDriver


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> dict:
    """A private copy of the registry, so that test registrations do not leak."""
    factory.names()  # load the built-in drivers first
    copy = dict(factory._registry)
    monkeypatch.setattr(factory, "_registry", copy)
    return copy


def test_builtin_names() -> None:
    assert {"inmemory", "s3", "s3aws"} <= set(factory.names())
    assert factory.names() == sorted(factory.names())


def test_s3_and_s3aws_are_one_driver() -> None:
    """Two names for one constructor; the driver calls itself ``s3aws`` either way (error texts)."""
    factory.names()
    assert factory._registry["s3"] is factory._registry["s3aws"]
    params = {
        "bucket": "b",
        "region": "us-east-1",
        "regionendpoint": "http://127.0.0.1:9",
        "accesskey": "a",
        "secretkey": "s",
    }
    for name in ("s3", "s3aws"):
        driver = factory.create(name, params)
        try:
            assert isinstance(driver, CheckedDriver)
            assert driver.name == "s3aws"
        finally:
            driver.close()


def test_create_wraps_in_checked_driver() -> None:
    driver = factory.create("inmemory")
    assert isinstance(driver, CheckedDriver)
    assert isinstance(driver.inner, InMemoryDriver)
    assert driver.name == "inmemory"
    assert driver.unwrap() is driver.inner


def test_create_gives_independent_drivers() -> None:
    a, b = factory.create("inmemory"), factory.create("inmemory", {})
    a.put_content("/x", b"1")
    assert b.list("/") == []


def test_unknown_driver() -> None:
    with pytest.raises(InvalidStorageDriverError) as exc:
        factory.create("nosuchdriver", {})
    assert str(exc.value) == "StorageDriver not registered: nosuchdriver"
    assert exc.value.name == "nosuchdriver"


def test_inmemory_rejects_parameters() -> None:
    with pytest.raises(ParameterError, match="rootdirectory"):
        factory.create("inmemory", {"rootdirectory": "/x"})


def test_register_and_create(registry: dict) -> None:
    seen: list[Mapping[str, Any]] = []

    def constructor(params: Mapping[str, Any]) -> InMemoryDriver:
        seen.append(params)
        return InMemoryDriver()

    factory.register("testdriver", constructor)
    params = {"a": 1}
    driver = factory.create("testdriver", params)
    assert isinstance(driver, CheckedDriver)
    assert seen == [params] and seen[0] is not params  # the constructor gets its own copy
    assert "testdriver" in factory.names()


def test_duplicate_registration(registry: dict) -> None:
    factory.register("twice", lambda params: InMemoryDriver())
    with pytest.raises(ValueError, match="twice"):
        factory.register("twice", lambda params: InMemoryDriver())
    with pytest.raises(ValueError, match="inmemory"):
        factory.register("inmemory", lambda params: InMemoryDriver())


def test_constructor_errors_propagate(registry: dict) -> None:
    def broken(params: Mapping[str, Any]) -> InMemoryDriver:
        raise ParameterError("bucket: required")

    factory.register("broken", broken)
    with pytest.raises(ParameterError, match="bucket: required"):
        factory.create("broken", {})
