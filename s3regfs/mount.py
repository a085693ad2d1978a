"""The mount lifecycle: check, mount, announce, serve, flush, unmount, exit code.

Owns :func:`run_mount`, the one entry point the CLI calls (in the foreground;
background mode is the CLI's: it re-executes ``mount --foreground`` as a
detached child and waits for that child's ``READY=1``):

1. the mount point is checked (:mod:`s3regfs.mountpoint`: missing, not a
   directory, already mounted, stale), the metrics address bound (``-o metrics``,
   :mod:`s3regfs.metrics`: a taken one is a UserError), then that the storage answers (the CLI's
   ``probe``: :func:`s3regfs.credentials.probe`, one LIST, refused credentials worded apart);
2. the core and the adapter are built, their observers attached (the status xattr of
   :mod:`s3regfs.status` always; the metrics' request observer, FUSE hook and collector
   with ``-o metrics``), and mfusepy runs the libfuse 3
   multi-threaded loop (``fsname``/``subtype`` ``s3regfs``; no ``hard_remove``: libfuse's
   ``.fuse_hidden*`` stand-in names let ``fstat`` reach unlinked open files, and the core
   keeps them out of listings and the bucket;
   ``default_permissions`` with ``allow_other``, ``ro`` for read-only);
3. a probe thread has a short-lived child process statfs the mount point
   and sends ``READY=1`` once the mount answers (then raises the kernel
   readahead so reads arrive as 1 MiB requests).  The daemon itself never
   makes a request to its own mount: a thread of the daemon waiting on its
   own mount when the daemon is killed would make the process unkillable;
   for the same reason the cache directory may not be inside the mount;
4. SIGTERM, SIGINT and SIGHUP are blocked in every thread and taken by one
   thread with ``sigwait``.  SIGTERM and SIGINT stop: it sends ``STOPPING=1``,
   finishes or fails every pending upload (``core.shutdown()``) while the mount
   still answers, then unmounts (lazily if busy); ``fusermount3 -u`` from outside
   ends the loop the same way, and libfuse's ``destroy`` makes the final flush.
   SIGHUP reloads (``systemctl reload``): the core's metadata caches are dropped,
   the kernel's attributes of the names they held too, and the log files are
   reopened (``RELOADING=1`` … ``READY=1`` around it); the mount stays;
5. the multipart uploads that failed writes left behind and that the
   driver could not abort yet are tried once more (S3 may be back); each one
   left is logged at ERROR by the driver, and the last line then does not say
   that every upload completed;
6. the exit code says whether data was lost: :data:`exitcodes.OK` or
   :data:`exitcodes.DATA_LOSS` (:data:`exitcodes.MOUNT`/``STORAGE`` come as
   :class:`~s3regfs.errors.UserError` before anything is mounted);
7. once the mount has served, the process ends with that code at once (``os._exit``, after the
   logs are flushed): everything the mount keeps is written by then (uploads, the metadata index,
   the data cache's block lists), and a ranged GET still in flight on the read pool (a readahead
   window or a background fill whose handles are gone) is not waited for, as the interpreter's
   exit would wait for every pool thread until the driver's timeout.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, NoReturn, Self

from s3regfs import exitcodes, logs, malloctune, mountpoint, status
from s3regfs.driver.base import StorageDriver
from s3regfs.driver.observe import RequestCounts, RequestEvents
from s3regfs.driver.wrapper import DriverWrapper
from s3regfs.errors import UserError
from s3regfs.fs import operations
from s3regfs.fs.core import RegistryFilesystem
from s3regfs.fs.errors import CacheDirError
from s3regfs.fs.operations import RegistryFUSE, S3RegOperations
from s3regfs.fs.options import FsOptions
from s3regfs.kernelentries import KernelEntries

log = logging.getLogger(__name__)

Notify = Callable[[str], Any]

FUSE_THREADS = 64
"""libfuse ``max_threads``: requests served at once (a flush waiting for its upload holds one)."""
IDLE_THREADS = FUSE_THREADS
"""libfuse ``max_idle_threads``: workers kept between bursts: all of them, since each keeps its
Python thread state for good (:class:`~s3regfs.fs.operations.RegistryFUSE`)."""
READ_AHEAD_KB = 4096
"""Kernel readahead of the mount (bdi ``read_ahead_kb``): sequential reads come as 1 MiB requests."""
KERNEL_TTL_MAX = 1.0
"""The kernel's entry/attribute timeout is ``min(metadata_ttl, this)``: repeated ``stat``s of names
the kernel has seen within it cost no request at all, and another mount's changes still show within
``metadata_ttl`` plus at most this (5 s at the defaults; docs/SEMANTICS.md)."""
READY_TIMEOUT = 120.0
"""How long the probe waits for the mount to answer before it logs an error."""
UNMOUNT_GRACE = 10.0
"""After a lazy unmount, how long open files may keep the loop alive before the process exits anyway."""
SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGHUP})


def run_mount(
    driver: StorageDriver,
    options: FsOptions,
    mountpoint: str,
    *,
    foreground: bool = True,
    allow_other: bool = False,
    extra_fuse_options: dict[str, Any] | None = None,
    notify: Notify | None = None,
    probe: Callable[[], None] | None = None,
    metrics: tuple[str, int] | None = None,
    settings: dict[str, Any] | None = None,
) -> int:
    """Mount ``driver`` at ``mountpoint`` and serve until unmounted or signalled; the exit code.

    ``probe`` checks that the storage answers, after the mount point (the CLI's: one LIST, refused
    credentials and an unreachable endpoint each a one-line UserError).  ``metrics`` is where
    ``/metrics`` is served (None: off); ``settings`` the configuration the status shows (no secrets).
    """
    if not foreground:
        raise ValueError("run_mount serves in the foreground; the CLI starts background mounts as a child")
    mount = _Mount(driver, options, mountpoint, allow_other, dict(extra_fuse_options or {}), notify)
    mount.probe = probe
    mount.metrics_address = metrics
    mount.settings = settings
    return mount.run()


def build_core(driver: StorageDriver, options: FsOptions) -> RegistryFilesystem:
    """The filesystem core; a cache directory it cannot use is a one-line UserError."""
    try:
        return RegistryFilesystem(driver, options)
    except CacheDirError as exc:
        raise UserError(
            f"the cache directory {exc.cache_dir} is not usable ({exc.reason}); "
            "choose a writable one with -o cache_dir=DIR",
            exitcodes.CONFIG,
        ) from exc


def fuse_options(options: FsOptions, allow_other: bool, extra: dict[str, Any]) -> dict[str, Any]:
    """The libfuse ``-o`` options (mfusepy keyword arguments) of a mount."""
    kernel_ttl = min(KERNEL_TTL_MAX, options.metadata_ttl)
    chosen: dict[str, Any] = {
        "fsname": "s3regfs",
        "subtype": "s3regfs",
        "entry_timeout": kernel_ttl,
        "attr_timeout": kernel_ttl,
        "negative_timeout": 0.0,
        "max_threads": FUSE_THREADS,
        "max_idle_threads": IDLE_THREADS,
        "ro": options.read_only,
        "allow_other": allow_other,
        "default_permissions": allow_other,
    }
    chosen.update(extra)
    return chosen


class _Mount:
    """One mount from check to exit code (see the module docstring for the sequence)."""

    def __init__(self, driver: StorageDriver, options: FsOptions, requested: str, allow_other: bool,
                 extra: dict[str, Any], notify: Notify | None) -> None:
        self.driver = driver
        self.options = options
        self.requested = requested
        self.path = requested
        self.allow_other = allow_other
        self.extra = extra
        self._notify_fn = notify
        self.probe: Callable[[], None] | None = None
        self.metrics_address: tuple[str, int] | None = None
        self.settings: dict[str, Any] | None = None
        self._metrics: Any = None  # s3regfs.metrics.Metrics, imported only when asked for
        self.core: RegistryFilesystem | None = None
        self._ready = threading.Event()
        self._done = threading.Event()
        self._stopping = threading.Event()
        self._flush_lock = threading.Lock()
        self._data_ok = True
        self._fuse_ptr: int | None = None
        self.kernel_entries: KernelEntries | None = None

    # -- the sequence ------------------------------------------------------------------

    def run(self) -> int:
        malloctune.bound_malloc_retention()  # before the probe, the FUSE loop and the driver's pools allocate
        self.notify("STATUS=Checking the mount point")
        self.path = mountpoint.prepare(self.requested)
        self._check_libfuse()
        self._check_cache_dir()
        logs.log_to_fallback(self.options.cache_dir)  # a background mount without /dev/log
        self._serve_metrics()
        if self.probe is not None:
            self.notify("STATUS=Checking the storage")
            self.probe()
        with _SignalThread(self._on_signal):
            self.core = build_core(self.driver, self.options)
            kernel = self.kernel_entries = KernelEntries(self.options.kernel_entries, self.path)
            ops = S3RegOperations(self.core, on_init=self._on_init, on_destroy=self._on_destroy,
                                  on_operation=self._observe(self.core),
                                  on_listed=kernel.listed if kernel.enabled else None,
                                  on_looked_up=kernel.looked_up if kernel.enabled else None)
            threading.Thread(target=self._announce_ready, name="s3regfs-ready", daemon=True).start()
            self.notify(f"STATUS=Mounting {self.path}")
            try:
                RegistryFUSE(ops, self.path, foreground=True,
                             **fuse_options(self.options, self.allow_other, self.extra))
            except RuntimeError as exc:
                return self._loop_failed(exc)
            finally:
                kernel.stop()
                self._done.set()
        _end_process(self._finish())

    def _serve_metrics(self) -> None:
        """Bind ``/metrics`` before anything is mounted (a taken address is a UserError)."""
        if self.metrics_address is None:
            return
        from s3regfs import metrics  # prometheus_client only for mounts that serve metrics

        self._metrics = metrics.Metrics()
        metrics.serve(self.metrics_address, self._metrics)
        host, port = self.metrics_address
        log.info("serving metrics at http://%s:%d/metrics", f"[{host}]" if ":" in host else host, port)

    def _observe(self, core: RegistryFilesystem) -> Callable[[str, int], None] | None:
        """Attach the status xattr and the metrics to ``core`` and the driver; the adapter's FUSE hook."""
        events = _request_events(self.driver)
        counts = None
        if events is not None:
            counts = RequestCounts()
            events.add(counts)
        address = None
        if self.metrics_address is not None:
            host, port = self.metrics_address
            address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        kernel = self.kernel_entries

        def snapshot() -> dict[str, Any]:
            return {**core.snapshot(), "kernel_entries": kernel.snapshot() if kernel is not None else None}

        reporter = status.Reporter(self.path, snapshot, config=self.settings, requests=counts, metrics=address)
        core.status_source = reporter.render
        if self._metrics is None:
            return None
        if events is not None:
            events.add(self._metrics)
        self._metrics.watch(core.snapshot, reporter.started)
        return self._metrics.fuse_operation  # type: ignore[no-any-return]

    def _check_libfuse(self) -> None:
        major, minor = operations.libfuse_version()
        if major != 3:
            raise UserError(
                f"s3regfs needs libfuse 3, but mfusepy loaded libfuse {major}.{minor}; install libfuse3 "
                "(apt install fuse3) or set FUSE_LIBRARY_NAME=fuse3",
                exitcodes.MOUNT,
            )

    def _check_cache_dir(self) -> None:
        cache = os.path.realpath(self.options.cache_dir)
        if cache == self.path or cache.startswith(self.path.rstrip("/") + "/"):
            raise UserError(
                f"cache_dir {cache} is inside the mount point {self.path}; the daemon cannot keep its spill files "
                "on its own mount: choose a local directory (-o cache_dir=/var/cache/s3regfs)",
                exitcodes.CONFIG,
            )

    def _loop_failed(self, exc: RuntimeError) -> int:
        if not self._ready.is_set():
            raise UserError(
                f"could not mount {self.path} (libfuse error {exc}; its message is above); check the "
                "-o options and that the mount point is usable",
                exitcodes.MOUNT,
            ) from None
        log.error("the FUSE loop of %s ended with error %s", self.path, exc)
        self.flush("the FUSE loop ended")
        return exitcodes.DATA_LOSS if not self._data_ok else exitcodes.FAILURE

    def _finish(self) -> int:
        left = self._finish_aborts()
        if self._data_ok and not left:
            log.info("unmounted %s; every upload completed", self.path)
            self.notify("STATUS=Stopped: every upload completed")
            return exitcodes.OK
        if self._data_ok:
            log.warning("unmounted %s; every file was saved, but %d multipart upload(s) could not be aborted and "
                        "are left in the bucket (see the errors above)", self.path, left)
            self.notify("STATUS=Stopped: every file saved; multipart uploads left in the bucket")
            return exitcodes.OK
        log.error("unmounted %s, but some written data could not be uploaded (see the errors above)", self.path)
        self.notify("STATUS=Stopped: some written data could not be uploaded")
        return exitcodes.DATA_LOSS

    def _finish_aborts(self) -> int:
        """The driver's last try at the aborts it could not do (S3 may be back); how many are left."""
        inner = self.driver.unwrap() if isinstance(self.driver, DriverWrapper) else self.driver
        finish = getattr(inner, "finish_aborts", None)  # an s3 driver extension, like list_uploads
        if finish is None:
            return 0
        try:
            return len(finish())
        except Exception:
            log.exception("aborting the multipart uploads left by failed writes failed")
            return 0

    # -- readiness -----------------------------------------------------------------------

    def _announce_ready(self) -> None:
        """Poll until the mount answers a statfs from another process, then READY=1."""
        deadline = time.monotonic() + READY_TIMEOUT
        while not self._done.is_set():
            entry = mountpoint.mounted_at(self.path)
            if entry is not None and entry.fstype == mountpoint.FSTYPE and mountpoint.answers(self.path):
                self._ready.set()
                _raise_readahead(entry.device)
                log.info("mounted %s", self.path)
                self.notify("READY=1")
                self.notify(f"STATUS=Serving {self.path}")
                return
            if time.monotonic() > deadline:
                log.error("%s did not answer within %gs of mounting", self.path, READY_TIMEOUT)
                deadline = float("inf")
            self._done.wait(0.01)

    # -- stopping ------------------------------------------------------------------------

    def _on_signal(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if signum == signal.SIGHUP:
            self._reload()
            return
        if self._stopping.is_set():
            log.warning("%s: already stopping; waiting for pending uploads (SIGKILL loses them)", name)
            return
        self._stopping.set()
        log.info("%s: finishing pending uploads, then unmounting %s", name, self.path)
        self.notify("STOPPING=1")
        while not (self._ready.is_set() or self._done.is_set()):
            self._done.wait(0.05)
        if self._done.is_set():
            return
        self.flush(name)
        self.notify(f"STATUS=Unmounting {self.path}")
        self._unmount()

    def _reload(self) -> None:
        """SIGHUP: drop the metadata caches (the core's, and the kernel's of those names), reopen the logs."""
        if self._stopping.is_set():
            log.info("SIGHUP: stopping already; nothing to reload")
            return
        ready = self._ready.is_set()
        if ready:
            usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
            self.notify(f"RELOADING=1\nMONOTONIC_USEC={usec}\nSTATUS=Reloading")
        core = self.core
        if core is not None:
            known = core.drop_caches()
            if ready and self._fuse_ptr:
                operations.invalidate_paths(self._fuse_ptr, known)
        logs.reopen()
        log.info("reloaded: metadata caches dropped, log file reopened")
        if ready:
            self.notify(f"READY=1\nSTATUS=Serving {self.path}")

    def _unmount(self) -> None:
        self._fuse_exit()
        ok, why = mountpoint.unmount(self.path)
        if not ok:
            log.warning("%s is busy (%s): detaching it lazily; files still open there get errors", self.path, why)
            mountpoint.unmount(self.path, lazy=True)
        if self._done.wait(UNMOUNT_GRACE):
            return
        log.error("open files kept the FUSE loop of %s alive %gs after unmounting; exiting", self.path,
                  UNMOUNT_GRACE)
        self.flush("exit")
        _end_process(self._finish())

    def flush(self, why: str) -> bool:
        """``core.shutdown()`` once at a time; remembers whether data was lost."""
        if self.core is None:
            return True
        with self._flush_lock:
            self.notify("STATUS=Finishing pending uploads")
            try:
                ok = self.core.shutdown()
            except Exception:
                log.exception("finishing pending uploads (%s) failed", why)
                ok = False
            if not ok:
                log.error("%s: some pending uploads could not be completed", why)
            self._data_ok = self._data_ok and ok
            return ok

    # -- libfuse hooks -------------------------------------------------------------------

    def _on_init(self) -> None:
        self._fuse_ptr = operations.current_fuse()
        if self._fuse_ptr and self.kernel_entries is not None and self.kernel_entries.enabled:
            invalidate = operations.entry_invalidator(self._fuse_ptr)
            if invalidate is None:
                log.info("this libfuse cannot drop kernel entries; kernel_entries has no effect")
            else:
                self.kernel_entries.start(invalidate)

    def _on_destroy(self) -> None:
        if self.kernel_entries is not None:
            self.kernel_entries.stop()
        if not self._stopping.is_set():
            self._stopping.set()
            log.info("%s was unmounted; finishing pending uploads", self.path)
            self.notify("STOPPING=1")
        self.flush("unmount")

    def _fuse_exit(self) -> None:
        """Tell the loop to stop at its next request (a lazily detached mount may still get some)."""
        if self._fuse_ptr:
            operations.exit_loop(self._fuse_ptr)

    def notify(self, message: str) -> None:
        if self._notify_fn is None:
            return
        try:
            self._notify_fn(message)
        except Exception as exc:  # noqa: BLE001 - a supervisor that went away must not stop the mount
            log.debug("notify %r failed: %s", message, exc)


def _end_process(code: int) -> NoReturn:
    """End the daemon with ``code`` now, without waiting for pool threads (module docstring, 7)."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    os._exit(code)


def _request_events(driver: StorageDriver) -> RequestEvents | None:
    """The request events of the innermost driver (the s3 driver's); None for a driver without."""
    inner = driver.unwrap() if isinstance(driver, DriverWrapper) else driver
    events = getattr(inner, "requests", None)
    return events if isinstance(events, RequestEvents) else None


def _raise_readahead(device: str) -> None:
    """Best effort (root only): larger kernel readahead, so sequential reads are 1 MiB requests."""
    try:
        with open(f"/sys/class/bdi/{device}/read_ahead_kb", "w") as f:
            f.write(str(READ_AHEAD_KB))
    except OSError as exc:
        log.debug("kernel readahead of the mount left at its default: %s", exc)


class _SignalThread:
    """Block SIGTERM/SIGINT/SIGHUP in this and every later thread; hand them to one handler thread.

    libfuse installs its own handlers for these signals; with the signals
    blocked everywhere they never run, so the order of a stop is ours.
    """

    def __init__(self, handler: Callable[[int], None]) -> None:
        self._handler = handler
        self._quit = threading.Event()
        self._thread = threading.Thread(target=self._run, name="s3regfs-signals", daemon=True)
        self._old_mask: set[int | signal.Signals] = set()

    def __enter__(self) -> Self:
        self._old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._quit.set()
        self._thread.join(timeout=UNMOUNT_GRACE + 5)
        while signal.sigtimedwait(SIGNALS, 0) is not None:
            pass  # a signal that arrived while stopping has been answered by the stop itself
        signal.pthread_sigmask(signal.SIG_SETMASK, self._old_mask)

    def _run(self) -> None:
        while not self._quit.is_set():
            info = signal.sigtimedwait(SIGNALS, 0.2)
            if info is not None:
                try:
                    self._handler(info.si_signo)
                except Exception:
                    log.exception("handling signal %s failed", info.si_signo)
