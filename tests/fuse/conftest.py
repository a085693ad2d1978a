"""Fixtures for real-mount tests: every test here is marked ``fuse`` and skipped without FUSE.

* ``mount_factory``: start mounts (``inmemory`` or ``s3``) in the test's tmp dir;
  each is unmounted at teardown, and a daemon that was expected to stop
  cleanly must exit 0 with no traceback in its log.
* ``shared_mount`` (module): one ``inmemory`` mount shared by a module's tests;
  ``mnt``: a fresh, empty directory inside it for one test.
* ``s3_mount``: a mount of the test's own fresh bucket on the local S3 server.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import mounts
from tests.support.mounts import Mount

_HERE = Path(__file__).resolve().parent
_UNUSABLE = mounts.fuse_unusable_reason()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.fuse)
            if _UNUSABLE:
                item.add_marker(pytest.mark.skip(reason=f"real mounts unavailable: {_UNUSABLE}"))


MountFactory = Callable[..., Mount]


class _Mounts:
    """The mounts a test (or module) started, torn down in reverse order."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.started: list[Mount] = []
        self._names = itertools.count(1)

    def start(self, driver: str = "inmemory", *, options: dict[str, Any] | None = None,
              expect_clean: bool = True, name: str | None = None, **kwargs: Any) -> Mount:
        name = name or f"mnt{next(self._names)}"
        opts = {"cache_dir": str(self.root / f"{name}-cache"), **(options or {})}
        mount = mounts.start(self.root / name, driver=driver, options=opts, **kwargs)
        mount.expect_clean = expect_clean
        self.started.append(mount)
        return mount

    def teardown(self) -> list[str]:
        problems = []
        for mount in reversed(self.started):
            mount.stop()  # also detaches what a killed daemon left behind
            code = mount.proc.returncode
            log = mount.log()
            if mount.expect_clean:
                if code != 0:
                    problems.append(f"{mount.path}: daemon exited with {code}:\n{log}")
                elif "Traceback" in log:
                    problems.append(f"{mount.path}: traceback in the daemon log:\n{log}")
            if mount.events:
                problems.append(f"{mount.path}: {', '.join(mount.events)}\n{log}")
        return problems


@pytest.fixture
def mount_factory(tmp_path: Path) -> Iterator[MountFactory]:
    """``mount_factory(driver="inmemory", options={...}, expect_clean=True, env=..., args=...)``."""
    started = _Mounts(tmp_path)
    yield started.start
    problems = started.teardown()
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def shared_mount(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mount]:
    """One in-memory mount for a whole module (tests work in their own ``mnt`` directory)."""
    started = _Mounts(tmp_path_factory.mktemp("shared"))
    mount = started.start("inmemory", options={"metadata_ttl": 1})
    yield mount
    problems = started.teardown()
    assert not problems, "\n".join(problems)


@pytest.fixture
def mnt(shared_mount: Mount, request: pytest.FixtureRequest) -> Path:
    """A fresh directory (named after the test) in the module's shared mount."""
    name = "".join(c if c.isalnum() or c in "._-" else "_" for c in request.node.name)[:200]
    path = shared_mount.path / name
    path.mkdir()
    return path


@pytest.fixture
def s3_mount(mount_factory: MountFactory, s3_driver_params: dict[str, Any]) -> Mount:
    """A mount of this test's fresh bucket (credentials passed by environment, not ``-o``)."""
    options, env = mounts.s3_options(s3_driver_params)
    return mount_factory("s3", options=options, env=env)
