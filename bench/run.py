#!/usr/bin/env python3
"""The benchmark command: ``python bench/run.py [--short]`` (as root; see docs/PERFORMANCE.md).

Owns: the command line, the order of the run (one local SeaweedFS; per
workload group: its untimed setup, then every repetition over every tool in a
rotating order so that drift of the server spreads evenly), the request
counting pass through the counting proxy, cleanup (every mount unmounted,
the server stopped, even on Ctrl-C), and where results go: raw JSON under
``bench/results/``, the generated section of ``docs/PERFORMANCE.md`` and
``docs/performance.png``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import report, scale, system, workloads  # noqa: E402
from bench.countingproxy import CountingProxy  # noqa: E402
from bench.system import MiB, BenchError  # noqa: E402
from bench.tools import MOUNTS, Boto3Ceiling, Credentials, Mount  # noqa: E402
from s3regfs.demo.localserver import LocalS3Server, find_weed  # noqa: E402

FLOOR_GROUPS = ("tree", "rand")
"""The workload groups the Python FUSE floor (bench/floorfs.py) also runs in."""

log = logging.getLogger("bench")
REPO = Path(__file__).resolve().parent.parent
ALL_TOOLS = ("boto3", "s3regfs", "s3fs", "rclone")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="small sizes and one repetition (about 3 minutes)")
    parser.add_argument("--tools", default=",".join(ALL_TOOLS), help="comma-separated subset of %(default)s")
    parser.add_argument("--groups", default=",".join([*workloads.GROUPS, "counts"]),
                        help="comma-separated workload groups (default: %(default)s)")
    parser.add_argument("--reps", type=int, help="repetitions (default: 3, or 1 with --short)")
    parser.add_argument("--scale-sizes", default=",".join(str(n) for n in scale.SIZES),
                        help="the scale group's tree sizes, comma-separated (default: %(default)s)")
    parser.add_argument("--scale-store", type=Path, default=Path("/var/tmp/s3regfs-scale"),
                        help="where the scale group keeps its generated trees between runs (default: %(default)s)")
    parser.add_argument("--tree-objects", type=int, help="objects of the tree and lookup groups' registry tree "
                        "(default: 10000, or 1000 with --short)")
    parser.add_argument("--doc", type=Path, help="write the results into this Markdown file "
                        "(default: docs/PERFORMANCE.md for a full run of every tool, none otherwise)")
    parser.add_argument("--no-doc", action="store_true", help="do not write docs/ at all")
    parser.add_argument("--workdir", type=Path, help="scratch directory (default: a new one under /var/tmp)")
    parser.add_argument("--keep-workdir", action="store_true", help="keep the scratch directory (logs, caches)")
    parser.add_argument("--boto3-part-size", type=int, default=32, help="boto3 part size in MiB (default %(default)s)")
    parser.add_argument("--boto3-concurrency", type=int, default=8, help="boto3 parallel parts (default %(default)s)")
    parser.add_argument("--no-floor", action="store_true",
                        help="skip the Python FUSE floor (bench/floorfs.py) in the tree, rand and scale workloads")
    parser.add_argument("--profile", choices=("local", "remote"), default="local",
                        help="remote: every tool's requests pass a proxy that delays each by --rtt-ms (default: local)")
    parser.add_argument("--rtt-ms", type=float, default=20.0, help="the remote profile's delay per request (ms)")
    parser.add_argument("--s3regfs-option", action="append", default=[], metavar="NAME=VALUE",
                        help="an extra -o option for s3regfs (repeatable), for tuning experiments")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


class Runner:
    """One benchmark run; ``run()`` returns the raw results."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.sizes = workloads.Sizes.short() if args.short else workloads.Sizes.full()
        if args.reps:
            self.sizes = workloads.Sizes(**{**self.sizes.__dict__, "reps": args.reps})
        if args.tree_objects:
            self.sizes = workloads.Sizes(**{**self.sizes.__dict__, "tree_objects": args.tree_objects})
        self.tool_names = [t.strip() for t in args.tools.split(",") if t.strip()]
        self.groups = [g.strip() for g in args.groups.split(",") if g.strip()]
        unknown = set(self.tool_names) - set(ALL_TOOLS) | set(self.groups) - {*workloads.GROUPS, "counts", "scale"}
        if unknown:
            raise BenchError(f"unknown tool or group: {', '.join(sorted(unknown))}")
        self.results: dict[str, Any] = {"meta": {}, "values": {}, "errors": {}, "counts": {}, "scale": []}
        self.mounts: dict[str, Mount] = {}

    # -- orchestration ----------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        system.require_root()
        missing = system.missing_programs(["fio", "dd", "find", "ls", "fusermount3"] +
                                          [t for t in ("s3fs", "rclone") if t in self.tool_names])
        if missing:
            raise BenchError(f"missing programs: {', '.join(missing)} (apt-get install them)")
        workdir = self.args.workdir or Path(tempfile.mkdtemp(prefix="s3regfs-bench-", dir="/var/tmp"))
        workdir.mkdir(parents=True, exist_ok=True)
        started = time.time()
        log.info("scratch directory %s", workdir)
        try:
            if "scale" in self.groups:
                self._scale(workdir)
            if not set(self.groups) - {"scale"}:
                self.results["meta"].update(mode="scale", tools=["boto3", "s3regfs"], started=time.strftime("%Y-%m-%d %H:%M"))
                return self.results
            with LocalS3Server(data_dir=workdir / "weed") as server:
                if self.args.profile == "remote":
                    with CountingProxy(server.endpoint, delay=self.args.rtt_ms / 1000) as remote:
                        log.info("remote profile: every request delayed %.0f ms by a proxy", self.args.rtt_ms)
                        self._run_on(server, workdir, remote.endpoint)
                else:
                    self._run_on(server, workdir, server.endpoint)
        finally:
            for mount in self.mounts.values():
                mount.unmount()
            if not self.args.keep_workdir and self.args.workdir is None:
                shutil.rmtree(workdir, ignore_errors=True)
        self.results["meta"]["duration_s"] = time.time() - started
        return self.results

    def _scale(self, workdir: Path) -> None:
        """The scale group: each tree size on its own stored server (bench/scale.py)."""
        extra = self.args.s3regfs_option
        for objects in (int(n) for n in self.args.scale_sizes.split(",") if n.strip()):
            result = scale.measure(self.args.scale_store, objects, workdir, extra, floor=not self.args.no_floor)
            self.results["scale"].append(result)
            log.info("scale %d objects:\n%s", objects, scale.table(result))

    def _run_on(self, server: LocalS3Server, workdir: Path, endpoint: str) -> None:
        """Every group against ``endpoint``: the server's, or the remote profile's delaying proxy."""
        creds = Credentials(server.access_key, server.secret_key, server.region)
        ceiling = Boto3Ceiling(endpoint, creds, self.args.boto3_part_size * MiB, self.args.boto3_concurrency)
        run_id = time.strftime("%Y%m%dT%H%M%S")
        ctx = workloads.Context(endpoint, server.create_bucket("bench-data"),
                                server.create_bucket("bench-tree"), self.sizes, workdir, ceiling, run_id)
        biggest = max(self.sizes.seq, self.sizes.big, self.sizes.rand_file, self.sizes.reader_size)
        ctx.source = system.make_random_file(workdir / "source.bin", biggest)
        for name in self.tool_names:
            if name != "boto3":
                extra = self.args.s3regfs_option if name == "s3regfs" else []
                self.mounts[name] = MOUNTS[name](workdir / name, creds, extra)
        if not self.args.no_floor and set(FLOOR_GROUPS) & set(self.groups):
            floor = MOUNTS["floor"](workdir / "floor", creds)
            floor.objects = self.sizes.tree_objects  # type: ignore[attr-defined]
            self.mounts["floor"] = floor
        self._meta(server, ceiling)
        for group in self.groups:
            if group == "counts":
                self._count_requests(ctx, server)
            else:
                self._group(ctx, group)
        self.results["meta"]["load_end"] = os.getloadavg()

    def _meta(self, server: LocalS3Server, ceiling: Boto3Ceiling) -> None:
        options = {"boto3": ceiling.options_text()} if "boto3" in self.tool_names else {}
        options.update({name: mount.options_text() for name, mount in self.mounts.items()})
        options["server"] = ("SeaweedFS `weed server -s3` on loopback (s3regfs.demo.localserver.LocalS3Server, "
                             "GOMAXPROCS=2), data on the local disk; every tool talks to it directly")
        if self.args.profile == "remote":
            options["server"] += (f"; remote profile: every tool's requests pass bench/countingproxy.py, which "
                                  f"delays each request {self.args.rtt_ms:g} ms before forwarding it")
        self.results["meta"].update({
            "mode": "short" if self.args.short else "full",
            "profile": self.args.profile if self.args.profile == "local" else f"remote ({self.args.rtt_ms:g} ms per request)",
            "started": time.strftime("%Y-%m-%d %H:%M"),
            "machine": system.machine().describe(),
            "versions": system.versions(find_weed()),
            "options": options,
            "sizes": dict(self.sizes.__dict__),
            "tools": self.tool_names,
            "load_start": os.getloadavg(),
        })

    def _tool(self, ctx: workloads.Context, name: str) -> Any:
        return ctx.boto3 if name == "boto3" else self.mounts[name]

    def _group(self, ctx: workloads.Context, group: str) -> None:
        setup, func, _metrics = workloads.GROUPS[group]
        if setup is not None:
            begin = time.perf_counter()
            setup(ctx)
            log.info("%s: set up in %.1f s", group, time.perf_counter() - begin)
        reps = 1 if group == "big" else self.sizes.reps
        failed: set[str] = set()
        names = self.tool_names + (["floor"] if group in FLOOR_GROUPS and "floor" in self.mounts else [])
        for rep in range(reps):
            order = names[rep % len(names):] + names[: rep % len(names)]
            for name in order:
                if name in failed:
                    continue
                begin = time.perf_counter()
                try:
                    values = func(ctx, self._tool(ctx, name), rep)
                except Exception as exc:  # noqa: BLE001 - one tool's failure must not end the run
                    failed.add(name)
                    self._failure(group, name, exc)
                    continue
                for metric, value in values.items():
                    self.results["values"].setdefault(metric, {}).setdefault(name, []).append(value)
                shown = ", ".join(f"{k}={workloads.METRICS[k].fmt.format(v)}" for k, v in values.items())
                log.info("%s rep %d %-7s %s (%.1f s)", group, rep + 1, name, shown, time.perf_counter() - begin)
        for mount in self.mounts.values():
            mount.unmount()

    def _failure(self, group: str, name: str, exc: Exception) -> None:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log.error("%s / %s failed: %s", group, name, message)
        log.debug("%s", traceback.format_exc())
        self.results["errors"].setdefault(group, {})[name] = message
        mount = self.mounts.get(name)
        if mount is not None:
            if mount.log_tail():
                log.error("%s log tail:\n%s", name, mount.log_tail())
            mount.unmount()

    def _count_requests(self, ctx: workloads.Context, server: LocalS3Server) -> None:
        """Cold ``find``, ``ls -lR`` and ``stat`` once more per mount, through the counting proxy."""
        if not ctx.tree_keys:
            workloads.setup_tree(ctx)
        with CountingProxy(server.endpoint) as proxy:
            for name in self.tool_names:
                per_phase: dict[str, dict[str, int]] = {}

                def between(phase: str) -> None:
                    per_phase[phase] = proxy.counts()
                    proxy.reset()

                try:
                    if name == "boto3":
                        counting = Boto3Ceiling(proxy.endpoint, Credentials(server.access_key, server.secret_key,
                                                                            server.region), MiB * 8, 1)
                        proxy.reset()
                        workloads.flat_listing_seconds(workloads.Context(
                            proxy.endpoint, ctx.data_bucket, ctx.tree_bucket, ctx.sizes, ctx.workdir, counting,
                            ctx.run_id, tree_keys=ctx.tree_keys))
                        between("flat listing")
                    else:
                        workloads.tree(ctx, self.mounts[name], 0, endpoint=proxy.endpoint, between=between)
                        self.mounts[name].unmount()
                except Exception as exc:  # noqa: BLE001
                    self._failure("counts", name, exc)
                    continue
                self.results["counts"][name] = per_phase
                log.info("counts %-7s %s", name, per_phase)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    try:
        results = Runner(args).run()
    except BenchError as exc:
        log.error("%s", exc)
        return 1
    except KeyboardInterrupt:
        log.error("interrupted; mounts and server stopped")
        return 130
    out_dir = REPO / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    raw = out_dir / f"{stamp}-{results['meta']['mode']}.json"
    raw.write_text(json.dumps(results, indent=1))
    if results["scale"]:
        scale_section = report.scale_markdown(results)
        print(scale_section)
        if not args.no_doc:
            report.write_doc(args.doc or REPO / "docs" / "PERFORMANCE.md", scale_section, report.SCALE_BEGIN,
                             report.SCALE_END)
    if results["meta"].get("mode") == "scale":
        log.info("raw results: %s", raw)
        return 0
    full_run = not args.short and set(results["meta"]["tools"]) == set(ALL_TOOLS) and args.profile == "local"
    doc = None if args.no_doc else args.doc or (REPO / "docs" / "PERFORMANCE.md" if full_run else None)
    chart_path = (doc.parent / "performance.png") if doc else out_dir / f"{stamp}-{results['meta']['mode']}.png"
    has_chart = report.chart(results, chart_path)
    section = report.markdown(results, chart_path.name if has_chart and doc else None)
    print(section)
    if doc:
        report.write_doc(doc, section)
        log.info("wrote %s and %s", doc, chart_path)
    log.info("raw results: %s", raw)
    return 0 if not results["errors"] else 2


if __name__ == "__main__":
    sys.exit(main())
