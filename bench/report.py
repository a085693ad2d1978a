"""Turning raw measurements into the published figures.

Owns: medians, ratios to boto3 and to each anchor, the issue-7 targets and
whether they are met, the Markdown section written into docs/PERFORMANCE.md
(between the ``BEGIN/END GENERATED`` markers; the rest of the document is
hand-written), and the bar chart.

Raw results are a JSON-able dict::

    {"meta": {...}, "values": {metric: {tool: [v, ...]}}, "errors": {group: {tool: msg}},
     "counts": {tool: {phase: {operation: n}}}}
"""

from __future__ import annotations

import logging
import statistics
from pathlib import Path
from typing import Any, Callable

from bench import scale
from bench.workloads import METRICS

log = logging.getLogger(__name__)

TOOLS = ("boto3", "s3regfs", "s3fs", "rclone")
ANCHORS = ("s3fs", "rclone")
BEGIN = "<!-- BEGIN GENERATED: bench/run.py writes everything down to the END marker -->"
END = "<!-- END GENERATED -->"
SCALE_BEGIN = "<!-- BEGIN SCALE: bench/run.py --groups scale writes everything down to the END SCALE marker -->"
SCALE_END = "<!-- END SCALE -->"
# Operations as the counting proxy names them, grouped for the table.
OP_GROUPS = {
    "LIST": ("ListObjectsV2", "ListObjects"),
    "HEAD": ("HeadObject", "HeadBucket"),
    "GET": ("GetObject", "GetObjectRange"),
}


def median(results: dict[str, Any], metric: str, tool: str) -> float | None:
    values = results["values"].get(metric, {}).get(tool) or []
    return statistics.median(values) if values else None


def ratio_to_boto3(results: dict[str, Any], metric: str, tool: str) -> float | None:
    """tool ÷ boto3 (for ``find``: tool time ÷ one flat listing)."""
    value, base = median(results, metric, tool), median(results, metric, "boto3")
    if value is None or not base:
        return None
    return value / base


def advantage(results: dict[str, Any], metric: str, anchor: str) -> float | None:
    """How many times better s3regfs is than ``anchor`` (> 1: better), whichever way the metric points."""
    ours, theirs = median(results, metric, "s3regfs"), median(results, metric, anchor)
    if ours is None or theirs is None or ours == 0 or theirs == 0:
        return None
    return ours / theirs if METRICS[metric].higher_is_better else theirs / ours


def _fmt(value: float | None, fmt: str = "{:.2f}") -> str:
    return "—" if value is None else fmt.format(value)


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def count_group(ops: dict[str, int], group: str) -> int:
    return sum(ops.get(op, 0) for op in OP_GROUPS[group])


def other_count(ops: dict[str, int]) -> int:
    known = {op for names in OP_GROUPS.values() for op in names}
    return sum(n for op, n in ops.items() if op not in known)


# -- targets -------------------------------------------------------------------------------------


def _target(results: dict[str, Any], text: str, measured: Callable[[], tuple[str, bool] | None]) -> tuple[str, str, str]:
    try:
        got = measured()
    except (TypeError, KeyError, ZeroDivisionError):
        got = None
    if got is None:
        return text, "not measured", "—"
    shown, ok = got
    return text, shown, "yes" if ok else "**no**"


def targets(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(target, measured, met) for each issue-7 target."""
    r, m = ratio_to_boto3, median
    heads = results.get("counts", {}).get("s3regfs", {}).get("find")
    rows = [
        _target(results, "sequential write until in S3 ≥ 0.9 × boto3",
                lambda: (f"{r(results, 'seq_write', 's3regfs'):.2f}×", r(results, "seq_write", "s3regfs") >= 0.9)),
        _target(results, "cold sequential read ≥ 0.9 × boto3",
                lambda: (f"{r(results, 'cold_read', 's3regfs'):.2f}×", r(results, "cold_read", "s3regfs") >= 0.9)),
        _target(results, "cold sequential read ≥ 1.2 × s3fs-fuse",
                lambda: (f"{advantage(results, 'cold_read', 's3fs'):.2f}×",
                         advantage(results, "cold_read", "s3fs") >= 1.2)),
        _target(results, "CPU per GiB of the cold read ≤ 1.3 × boto3's (issue 15)",
                lambda: (f"{r(results, 'cold_read_cpu', 's3regfs'):.2f}×",
                         r(results, "cold_read_cpu", "s3regfs") <= 1.3)),
        _target(results, "4 KiB random reads, cold file ≥ 0.9 × boto3 ranged GETs",
                lambda: (f"{r(results, 'rand_cold', 's3regfs'):.2f}×", r(results, "rand_cold", "s3regfs") >= 0.9)),
        _target(results, "4 KiB random reads, file read before ≥ s3fs-fuse",
                lambda: (f"{advantage(results, 'rand_warm', 's3fs'):.2f}× s3fs",
                         advantage(results, "rand_warm", "s3fs") >= 1.0)),
        _target(results, "new 4 KiB files until in S3 ≥ 0.9 × boto3 PutObject loop",
                lambda: (f"{r(results, 'small_files', 's3regfs'):.2f}×",
                         r(results, "small_files", "s3regfs") >= 0.9)),
        _target(results, "cold `find` ≤ 1.5 × one flat listing",
                lambda: (f"{r(results, 'find', 's3regfs'):.2f}×", r(results, "find", "s3regfs") <= 1.5)),
        _target(results, "cold `find`: zero HEAD requests",
                lambda: None if heads is None else (f"{count_group(heads, 'HEAD')} HEAD",
                                                    count_group(heads, "HEAD") == 0)),
        _target(results, "`ls -lR` right after: < 1 s",
                lambda: (f"{m(results, 'ls_lR', 's3regfs'):.2f} s", m(results, "ls_lR", "s3regfs") < 1.0)),
        _target(results, "`stat` of the listed files: < 0.2 s",
                lambda: (f"{m(results, 'stat', 's3regfs'):.3f} s", m(results, "stat", "s3regfs") < 0.2)),
        _target(results, "peak RSS during the sequential write < 128 MiB",
                lambda: (f"{m(results, 'rss_write', 's3regfs'):.0f} MiB", m(results, "rss_write", "s3regfs") < 128)),
        _target(results, "peak RSS with 16 files read at once < 256 MiB",
                lambda: (f"{m(results, 'readers_rss', 's3regfs'):.0f} MiB",
                         m(results, "readers_rss", "s3regfs") < 256)),
    ]
    if not any("s3regfs" in per_tool for per_tool in results["values"].values()):
        return rows + [("beats both anchors on every row", "not measured", "—")]
    beaten = []
    compared = 0
    for metric in METRICS:
        for anchor in ANCHORS:
            adv = advantage(results, metric, anchor)
            compared += adv is not None
            if adv is not None and adv < 1.0:
                beaten.append(f"{metric} vs {anchor} ({adv:.2f}×)")
    if not compared:
        return rows + [("beats both anchors on every row", "no anchor measured", "—")]
    rows.append(("beats both anchors on every row", "behind on: " + ", ".join(beaten) if beaten else "all rows",
                 "**no**" if beaten else "yes"))
    return rows


# -- Markdown ------------------------------------------------------------------------------------


def markdown(results: dict[str, Any], chart_name: str | None) -> str:
    meta = results["meta"]
    sizes = meta["sizes"]
    load = f"load average {meta['load_start'][0]:.1f} at the start, {meta['load_end'][0]:.1f} at the end" \
        if "load_end" in meta else ""
    lines = [BEGIN, "", f"### Latest run: {meta['started']} ({meta['mode']} mode, {meta['duration_s'] / 60:.1f} min)",
             "", f"- Machine: {meta['machine']}; {load}", "- Versions: " + "; ".join(f"{k} {v}" for k, v in meta["versions"].items()),
             f"- Sizes: sequential {sizes['seq'] // 2**20} MiB, big write {sizes['big'] // 2**20} MiB, random-read file "
             f"{sizes['rand_file'] // 2**20} MiB for {sizes['rand_seconds']:.0f} s, {sizes['small_files']} small files, "
             f"tree of {sizes['tree_objects']} objects, stat of {sizes['stat_files']} files, {sizes['readers']} readers "
             f"× {sizes['reader_size'] // 2**20} MiB; median of {sizes['reps']} repetition(s) (the big write: 1)",
             "- Options:"]
    lines += [f"  - {tool}: {text}" for tool, text in meta["options"].items()]
    lines += ["", "Absolute figures (median), ratios to boto3 (for `find`: to one flat boto3 listing of the same "
              "keys) and s3regfs's advantage over each anchor (> 1× means s3regfs is better, whichever way the "
              "unit points):", ""]
    header = ["workload", "unit", *TOOLS, "s3regfs ÷ boto3", "s3fs ÷ boto3", "rclone ÷ boto3",
              "s3regfs vs s3fs", "s3regfs vs rclone"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, metric in METRICS.items():
        if not any(results["values"].get(key, {}).get(tool) for tool in TOOLS):
            continue  # the floor's own rows are told below the table
        row = [metric.label, metric.unit]
        row += [_fmt(median(results, key, tool), metric.fmt) for tool in TOOLS]
        row += [_ratio(ratio_to_boto3(results, key, tool)) for tool in ("s3regfs", "s3fs", "rclone")]
        row += [_ratio(advantage(results, key, anchor)) for anchor in ANCHORS]
        lines.append("| " + " | ".join(row) + " |")
    floor = {key: median(results, key, "floor") for key in ("find", "ls_lR", "stat")}
    if floor["find"] is not None:
        lines += ["", f"Python FUSE floor over the same tree (bench/floorfs.py: the keys served from a dict through "
                  f"mfusepy with the same readdirplus adapter, no S3): `find` {floor['find']:.2f} s "
                  f"({_ratio(ratio_to_boto3(results, 'find', 'floor'))} the flat listing), `ls -lR` "
                  f"{_fmt(floor['ls_lR'])} s, `stat` {_fmt(floor['stat'], '{:.3f}')} s."]
    floor_iops, own_iops = median(results, "rand_warm", "floor"), median(results, "rand_warm", "s3regfs")
    disk_iops = median(results, "rand_disk", "floor")
    if floor_iops and own_iops:
        lines += ["", f"Warm 4 KiB random reads through the same floor (its `/blob`, from memory): "
                  f"{floor_iops:,.0f} IOPS; s3regfs {own_iops:,.0f} IOPS, {own_iops / floor_iops:.2f}× the floor "
                  f"(issue 15 asks ≥ 0.7×)."
                  + (f" The same reads of a local file after dropping the page cache, no FUSE (the disk a warm "
                     f"read of a cached blob starts from): {disk_iops:,.0f} IOPS; s3regfs is "
                     f"{own_iops / disk_iops:.2f}× that." if disk_iops else "")]
    lines += _counts_table(results)
    lines += ["", "Targets of issue 7 (s3regfs, same run, same server):", "", "| target | measured | met |",
              "|---|---|---|"]
    lines += [f"| {t} | {got} | {ok} |" for t, got, ok in targets(results)]
    if results.get("errors"):
        lines += ["", "Failures in this run:", ""]
        for group, per_tool in results["errors"].items():
            lines += [f"- {group} / {tool}: {msg}" for tool, msg in per_tool.items()]
    if chart_name:
        lines += ["", f"![benchmark chart]({chart_name})"]
    lines += ["", END]
    return "\n".join(lines)


def _counts_table(results: dict[str, Any]) -> list[str]:
    counts = results.get("counts") or {}
    if not counts:
        return []
    lines = ["", "S3 requests per phase over the tree, counted by the proxy (one pass; LIST = ListObjects(V2), "
             "HEAD = HeadObject/HeadBucket, GET = GetObject incl. ranged):", "",
             "| tool | phase | LIST | HEAD | GET | other |", "|---|---|---|---|---|---|"]
    for tool in TOOLS:
        for phase, ops in counts.get(tool, {}).items():
            lines.append(f"| {tool} | {phase} | {count_group(ops, 'LIST')} | {count_group(ops, 'HEAD')} | "
                         f"{count_group(ops, 'GET')} | {other_count(ops)} |")
    return lines


def scale_markdown(results: dict[str, Any]) -> str:
    """The scale group's section: one table per tree size (bench/scale.py)."""
    meta = results["meta"]
    lines = [SCALE_BEGIN, "", f"### Scale: {meta.get('started', '')}, loopback SeaweedFS, every request through "
             "the counting proxy (no delay)", ""]
    for result in results["scale"]:
        lines += [scale.table(result), ""]
    lines.append(SCALE_END)
    return "\n".join(lines)


def write_doc(doc: Path, section: str, begin: str = BEGIN, end: str = END) -> None:
    """Replace the section between ``begin`` and ``end`` of ``doc`` (appending it when the markers are missing)."""
    text = doc.read_text() if doc.exists() else "# Performance\n\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1]
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    doc.write_text(text)


# -- chart ----------------------------------------------------------------------------------------


def chart(results: dict[str, Any], path: Path) -> bool:
    """One bar group per workload (absolute medians, labelled); False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed (pip install '.[bench]'); no chart")
        return False
    shown = [key for key in METRICS if any(results["values"].get(key, {}).values())]
    cols = 4
    rows = (len(shown) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    colours = {"boto3": "#888888", "s3regfs": "#1f77b4", "s3fs": "#ff7f0e", "rclone": "#2ca02c", "floor": "#d0d0d0"}
    for ax, key in zip(axes.flat, shown):
        metric = METRICS[key]
        tools = [t for t in (*TOOLS, "floor") if median(results, key, t) is not None]
        values = [median(results, key, t) or 0.0 for t in tools]
        bars = ax.bar(tools, values, color=[colours[t] for t in tools])
        ax.bar_label(bars, labels=[metric.fmt.format(v) for v in values], fontsize=8)
        better = "higher" if metric.higher_is_better else "lower"
        positive = [v for v in values if v > 0]
        log_scale = bool(positive) and max(positive) / min(positive) > 30
        if log_scale:  # e.g. s3fs's random reads from a fully downloaded file next to ranged GETs
            ax.set_yscale("log")
        scale = ", log scale" if log_scale else ""
        ax.set_title(f"{metric.label.replace('`', '')}\n{metric.unit} ({better} is better{scale})", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.margins(y=0.15)
    for ax in list(axes.flat)[len(shown):]:
        ax.axis("off")
    meta = results["meta"]
    fig.suptitle(f"s3regfs vs s3fs-fuse vs rclone mount vs boto3 — {meta['mode']} run {meta['started']}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True
