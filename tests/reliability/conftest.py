"""Fixtures of the reliability tests: the fault-injecting proxy and an s3 driver behind it.

* ``s3_proxy`` (function): an :class:`~tests.support.s3proxy.S3Proxy` in front of the
  session's SeaweedFS; stopped (and every stalled connection released) after the test.
* ``fast_policy``: a :class:`~s3regfs.driver.retry.RetryPolicy` with short timeouts and
  a short deadline, so that persistent faults end in seconds.
* ``shared_bucket`` (module): one bucket for a whole test module (creating a bucket makes
  SeaweedFS grow a volume, which takes seconds); each test gets its own ``rootdirectory``.
* ``store``: a :class:`BucketView` of this test's root, read straight from SeaweedFS (no
  proxy), to check what really is in the bucket.
* ``proxied_params``: s3 driver parameters for this test's root, through the proxy.
* ``faulty_driver``: the s3 driver (wrapped in CheckedDriver, as the factory does) on those
  parameters with ``fast_policy``.
* ``s3_mounts``: start real mounts (``s3regfs mount -f --driver s3``) of this test's root through
  the proxy; unmounted after the test, and a daemon expected to stop cleanly must exit 0 without
  a traceback.  Skipped where FUSE is unusable.
"""

from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from s3regfs.driver import CheckedDriver, StorageDriver
from s3regfs.driver.retry import RetryPolicy
from s3regfs.demo.localserver import LocalS3Server
from tests.reliability.helpers import BucketView
from tests.support import mounts
from tests.support.s3proxy import S3Proxy
from tests.support.s3server import unique_bucket_name

FAST = RetryPolicy(max_attempts=4, connect_timeout=0.5, read_timeout=1.0, deadline=6.0, base_delay=0.02,
                   max_delay=0.2, throttle_base_delay=0.05)

_roots = itertools.count(1)


@pytest.fixture
def s3_proxy(s3_server: LocalS3Server) -> Iterator[S3Proxy]:
    with S3Proxy(s3_server.endpoint) as proxy:
        yield proxy


@pytest.fixture
def fast_policy() -> RetryPolicy:
    return FAST


@pytest.fixture(scope="module")
def shared_bucket(s3_server: LocalS3Server) -> Iterator[str]:
    name = s3_server.create_bucket(unique_bucket_name("rel"))
    client = s3_server.client()
    client.put_object(Bucket=name, Key="warm-up", Body=b"x")  # grow the volume now, not in a timed test
    client.delete_object(Bucket=name, Key="warm-up")
    yield name
    s3_server.delete_bucket(name)


@pytest.fixture
def store(s3_server: LocalS3Server, shared_bucket: str) -> BucketView:
    return BucketView(s3_server.client(), shared_bucket, f"root{next(_roots)}")


@pytest.fixture
def proxied_params(s3_server: LocalS3Server, shared_bucket: str, s3_proxy: S3Proxy,
                   store: BucketView) -> dict[str, Any]:
    return s3_server.driver_parameters(shared_bucket, regionendpoint=s3_proxy.endpoint, rootdirectory=store.root)


@pytest.fixture
def faulty_driver(proxied_params: dict[str, Any], fast_policy: RetryPolicy) -> Iterator[StorageDriver]:
    from s3regfs.driver.s3 import S3Driver, from_parameters

    driver = CheckedDriver(S3Driver(from_parameters(proxied_params), retry=fast_policy))
    yield driver
    driver.close()


# -- real mounts ---------------------------------------------------------------------------

_FUSE_UNUSABLE = mounts.fuse_unusable_reason()
needs_fuse = pytest.mark.skipif(_FUSE_UNUSABLE is not None, reason=f"real mounts unavailable: {_FUSE_UNUSABLE}")


def s3_cli_args(params: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    """``--driver s3 -o ...`` arguments and the environment (credentials) for an ``s3regfs`` subcommand."""
    options, env = mounts.s3_options(params)
    return ["--driver", "s3", "-o", mounts.format_options(options)], {**os.environ, **env}


class MountSet:
    """Mounts of this test's root through the proxy (or straight to SeaweedFS); torn down after the test."""

    def __init__(self, tmp: Path, params: dict[str, Any]) -> None:
        self.tmp = tmp
        self.params = params
        self.started: list[mounts.Mount] = []

    def start(self, name: str = "mnt", *, params: dict[str, Any] | None = None,
              options: dict[str, Any] | None = None, expect_clean: bool = True, **kwargs: Any) -> mounts.Mount:
        opts, env = mounts.s3_options(params or self.params)
        opts = {"cache_dir": str(self.tmp / f"{name}-cache"), **opts, **(options or {})}
        path = self.tmp / name
        try:
            path.mkdir(parents=True)
        except FileExistsError:  # also a stale mount point (stat fails with ENOTCONN)
            pass
        # Like mounts.start, but also on a stale mount point (which mkdir(exist_ok=True) refuses).
        log_path = self.tmp / f"{name}.log"
        with open(log_path, "ab") as log_file:
            proc = subprocess.Popen(
                mounts.mount_command(path, "s3", opts, kwargs.pop("args", ())), stdin=subprocess.DEVNULL,
                stdout=log_file, stderr=subprocess.STDOUT, env={**os.environ, **env}, cwd=mounts.REPO,
                start_new_session=True,
            )
        mount = mounts.Mount(path, proc, log_path, expect_clean=expect_clean)
        self.started.append(mount)
        mounts.wait_answering(mount, kwargs.pop("ready_timeout", 60.0))
        return mount

    def teardown(self) -> list[str]:
        problems = []
        for mount in reversed(self.started):
            if mount.proc.poll() is None:
                mount.stop()
            if mount.is_mounted():  # e.g. a stale mount left by a killed daemon
                subprocess.run(["fusermount3", "-u", "-z", str(mount.path)], capture_output=True, check=False)
            if mount.expect_clean and mount.proc.returncode != 0:
                problems.append(f"{mount.path}: daemon exited with {mount.proc.returncode}:\n{mount.log()}")
            if mount.expect_clean and "Traceback" in mount.log():
                problems.append(f"{mount.path}: traceback in the daemon log:\n{mount.log()}")
        return problems


@pytest.fixture
def s3_mounts(tmp_path: Path, proxied_params: dict[str, Any]) -> Iterator[MountSet]:
    if _FUSE_UNUSABLE:
        pytest.skip(f"real mounts unavailable: {_FUSE_UNUSABLE}")
    started = MountSet(tmp_path, proxied_params)
    yield started
    problems = started.teardown()
    assert not problems, "\n".join(problems)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.path)).resolve().parents and "s3_mounts" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.fuse)
