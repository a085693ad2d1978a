"""Prometheus metrics of a mount: ``-o metrics=HOST:PORT`` serves ``/metrics`` (docs/OPERATIONS.md "Metrics").

Owns :class:`Metrics`, a private :class:`prometheus_client.CollectorRegistry` (never the global one)
with the metrics that count as things happen, fed by two hooks and nothing else:

* the S3 requests: :meth:`Metrics.request_done` is a
  :class:`~s3regfs.driver.observe.RequestObserver` added to the driver's request events (one call
  per HTTP attempt: operation, outcome, duration, object bytes);
* the FUSE operations: :meth:`Metrics.fuse_operation` is the adapter's ``on_operation`` hook (the
  one place it maps exceptions to errnos);

and :class:`_CoreCollector`, which asks the filesystem core for a snapshot at each scrape
(caches, readahead and write buffers, uploads, lost data): cheap, and no lock is held across a
request.  :func:`serve` binds the HTTP server (prometheus_client's ``start_http_server``, a
daemon thread) before the mount exists, so a taken or invalid address is a one-line
:class:`~s3regfs.errors.UserError`.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator
from typing import Any

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from s3regfs import exitcodes
from s3regfs.driver.observe import Request
from s3regfs.errors import UserError

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Seconds: from a HEAD on a local S3 to a part upload that rides out a slow server."""

Snapshot = Callable[[], dict[str, Any]]


def errno_name(err: int) -> str:
    """The ``errno`` label: ``OK`` for success, else the symbolic name (``EIO``, ``ENOENT``)."""
    return "OK" if err == 0 else errno.errorcode.get(err, str(err))


class Metrics:
    """The metrics of one mount, in their own registry."""

    def __init__(self) -> None:
        prometheus_client.disable_created_metrics()  # no *_created series next to every counter
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.s3_requests = Counter(
            "s3regfs_s3_requests", "S3 HTTP requests (each retry attempt counts) by API operation and outcome",
            ["operation", "outcome"], registry=r,
        )
        self.s3_duration = Histogram(
            "s3regfs_s3_request_duration_seconds", "Duration of S3 HTTP requests (each attempt), by API operation",
            ["operation"], buckets=DURATION_BUCKETS, registry=r,
        )
        self.s3_bytes_read = Counter(
            "s3regfs_s3_bytes_read", "Object bytes read from S3 (Content-Length of successful GetObject answers)",
            registry=r,
        )
        self.s3_bytes_written = Counter(
            "s3regfs_s3_bytes_written", "Object bytes written to S3 (bodies of accepted PutObject and UploadPart)",
            registry=r,
        )
        self.fuse_operations = Counter(
            "s3regfs_fuse_operations", "FUSE operations answered, by operation and errno (OK for success)",
            ["operation", "errno"], registry=r,
        )
        self._fuse: dict[tuple[str, int], Any] = {}

    # -- the hooks ---------------------------------------------------------------------------

    def request_done(self, request: Request) -> None:
        """One S3 HTTP attempt ended (a :class:`~s3regfs.driver.observe.RequestObserver`)."""
        self.s3_requests.labels(request.operation, request.outcome).inc()
        self.s3_duration.labels(request.operation).observe(request.seconds)
        if request.received:
            self.s3_bytes_read.inc(request.received)
        if request.sent:
            self.s3_bytes_written.inc(request.sent)

    def fuse_operation(self, operation: str, err: int) -> None:
        """One FUSE operation answered with ``err`` (0: success); the adapter's ``on_operation`` hook."""
        child = self._fuse.get((operation, err))
        if child is None:
            child = self._fuse[(operation, err)] = self.fuse_operations.labels(operation, errno_name(err))
        child.inc()

    def watch(self, snapshot: Snapshot, started: float) -> None:
        """Report the core's state (``RegistryFilesystem.snapshot``) at every scrape."""
        self.registry.register(_CoreCollector(snapshot, started))


class _CoreCollector(Collector):
    """The gauges and counters the core keeps itself, read at each scrape."""

    def __init__(self, snapshot: Snapshot, started: float) -> None:
        self._snapshot = snapshot
        self._started = started

    def describe(self) -> list[Metric]:
        return []  # not known before the first snapshot: the registry then collects nothing at register

    def collect(self) -> Iterator[Metric]:
        s = self._snapshot()
        uploads = s["uploads"]
        yield _gauge("s3regfs_start_time_seconds", "When the mount started (Unix time)", self._started)
        yield _gauge("s3regfs_open_files", "Files open on the mount", s["open_files"])
        yield _gauge("s3regfs_uploads_pending", "Open files with data not saved yet (uploading ones included)",
                     len(uploads["pending"]))
        yield _gauge("s3regfs_uploads_in_flight", "Uploads running now", len(uploads["in_flight"]))
        yield _counter("s3regfs_uploads_committed", "Uploads that completed (a file saved in the bucket)",
                       uploads["committed"])
        yield _counter("s3regfs_uploads_failed", "Uploads that failed (close/fsync got an error)", uploads["failed"])
        yield _counter("s3regfs_data_lost_files", "Files closed (last release) with data that could not be saved",
                       len(uploads["lost"]))
        meta = s["metadata_cache"]
        yield _counter("s3regfs_metadata_cache_hits", "Lookups answered by the metadata cache", meta["hits"])
        yield _counter("s3regfs_metadata_cache_misses", "Lookups the metadata cache could not answer", meta["misses"])
        yield _gauge("s3regfs_metadata_cache_entries", "Attribute, listing and negative entries cached", meta["entries"])
        data = s["data_cache"]
        if data is not None:
            yield _counter("s3regfs_data_cache_hits", "Reads answered from the data cache", data["hits"])
            yield _counter("s3regfs_data_cache_misses", "Reads of cacheable content not in the data cache",
                           data["misses"])
            yield _counter("s3regfs_blob_fills_started", "Blobs read at random that began to be fetched whole",
                           data["fills_started"])
            yield _counter("s3regfs_blob_fills_completed", "Blobs read at random fetched whole into the data cache",
                           data["fills_completed"])
            yield _counter("s3regfs_blob_fills_stopped",
                           "Fetches of a whole blob ended early (a failed GET, the readahead budget, unmount)",
                           data["fills_stopped"])
            yield _gauge("s3regfs_data_cache_bytes", "Bytes held by the data cache", data["bytes"])
            yield _gauge("s3regfs_data_cache_max_bytes", "Size bound of the data cache (data_cache_size)",
                         data["max_bytes"])
        ahead = s["readahead"]
        yield _gauge("s3regfs_readahead_bytes", "Readahead bytes in memory now", ahead["bytes_in_use"])
        yield _gauge("s3regfs_readahead_budget_bytes", "Readahead memory bound (readahead_budget)", ahead["budget"])
        write = s["write_buffers"]
        yield _gauge("s3regfs_write_buffer_bytes", "Bytes of single-PUT uploads in memory now",
                     write["put_bytes_in_use"])
        yield _gauge("s3regfs_write_multipart_uploads",
                     "Multipart uploads holding part buffers now (each about chunksize x (parts in flight + 1))",
                     write["multipart_uploads"])
        yield _gauge("s3regfs_write_streaming_files", "Files streaming to S3 while written", write["streaming_files"])


def _gauge(name: str, documentation: str, value: float) -> Metric:
    return GaugeMetricFamily(name, documentation, value=value)


def _counter(name: str, documentation: str, value: float) -> Metric:
    return CounterMetricFamily(name, documentation, value=value)


def serve(address: tuple[str, int], metrics: Metrics) -> Any:
    """Serve ``/metrics`` of ``metrics`` on ``address`` (a daemon thread); a one-line UserError if it cannot."""
    host, port = address
    try:
        server, _thread = prometheus_client.start_http_server(port, addr=host, registry=metrics.registry)
    except OSError as exc:
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        raise UserError(
            f"metrics={shown}: cannot listen there ({exc.strerror or exc}); choose a free local address "
            "with -o metrics=HOST:PORT (e.g. 127.0.0.1:9464)",
            exitcodes.CONFIG,
        ) from None
    return server
