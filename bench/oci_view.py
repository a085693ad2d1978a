"""The OCI view against the registry, same bucket, same run: ``python bench/oci_view.py [--size-mib 100]`` (root).

Pushes one image of ``--size-mib`` MiB (four random, incompressible layers) with skopeo into Debian's
``docker-registry`` (its own s3 driver on a local SeaweedFS), then, ``--reps`` times each, cold:

* ``registry``: ``skopeo copy docker://127.0.0.1:PORT/bench/image:v1 dir:OUT`` from the registry;
* ``view``: ``skopeo copy oci:MNT/bench/image:v1 dir:OUT`` from an s3regfs mount with ``-o view=oci``
  (mounted afresh with an empty cache directory before each copy, page cache dropped);
* ``boto3``: the same blobs (manifest, config, layers) downloaded with boto3 ``download_fileobj``
  one after the other, the ceiling of one reader.

Every copy's digests are checked against the pushed image. Prints a Markdown table of the medians
and the ratios; nothing is written into the repository.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.system import MiB, BenchError, drop_caches, require_root  # noqa: E402
from bench.tools import Credentials, S3regfsMount  # noqa: E402
from s3regfs.demo import registry as demoregistry  # noqa: E402
from s3regfs.demo.localserver import LocalS3Server, free_ports  # noqa: E402

log = logging.getLogger("bench.oci_view")
REPOSITORY, TAG = "bench/image", "v1"
V2 = "docker/registry/v2"


def _blob(layout: Path, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def build_image(layout: Path, size: int, layers: int = 4) -> dict[str, object]:
    """An OCI layout holding one image of ``size`` bytes of random layers; returns its manifest."""
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    descs = []
    with open("/dev/urandom", "rb") as rand:
        for _ in range(layers):
            data = rand.read(size // layers)
            descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", **_blob(layout, data)})
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descs]}}).encode()
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **_blob(layout, config)},
                "layers": descs}
    raw = json.dumps(manifest).encode()
    entry = {"mediaType": manifest["mediaType"], **_blob(layout, raw),
             "annotations": {"org.opencontainers.image.ref.name": TAG}}
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    return {**manifest, "digest": entry["digest"]}


def _copy(source: str, out: Path) -> None:
    shutil.rmtree(out, ignore_errors=True)
    done = subprocess.run(["skopeo", "--insecure-policy", "copy", "--quiet", "--src-tls-verify=false", source,
                           f"dir:{out}"], capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        raise BenchError(f"skopeo copy {source} failed: {done.stderr.strip()[-300:]}")


def _check(out: Path, manifest: dict[str, object]) -> None:
    """The copied manifest and blobs are the pushed ones."""
    if "sha256:" + hashlib.sha256((out / "manifest.json").read_bytes()).hexdigest() != manifest["digest"]:
        raise BenchError(f"{out}: the manifest differs from the pushed one")
    for desc in [manifest["config"], *manifest["layers"]]:  # type: ignore[list-item]
        hexdigest = desc["digest"].split(":", 1)[1]
        if hashlib.sha256((out / hexdigest).read_bytes()).hexdigest() != hexdigest:
            raise BenchError(f"{out}: blob {hexdigest} differs")


def _timed(what: Callable[[], None]) -> float:
    started = time.perf_counter()
    what()
    return time.perf_counter() - started


def run(size_mib: int, reps: int, workdir: Path) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"registry": [], "view": [], "boto3": []}
    with LocalS3Server(data_dir=workdir / "weed") as server:
        bucket = server.create_bucket("bench-oci-view")
        manifest = build_image(workdir / "image", size_mib * MiB)
        storage = demoregistry.s3_storage(server, bucket)
        with demoregistry.serve(workdir / "registry", storage, free_ports(1)[0]) as address:
            demoregistry.skopeo_push(workdir / "image", TAG, f"{address}/{REPOSITORY}:{TAG}")
            log.info("pushed %d MiB as %s:%s", size_mib, REPOSITORY, TAG)
            mount = S3regfsMount(workdir / "s3regfs", Credentials(server.access_key, server.secret_key,
                                                                   server.region), extra=["view=oci"])
            client = server.client()
            blobs = [manifest["digest"], manifest["config"]["digest"],  # type: ignore[index]
                     *(layer["digest"] for layer in manifest["layers"])]  # type: ignore[attr-defined]

            def boto3_get() -> None:
                for digest in blobs:
                    hexdigest = digest.split(":", 1)[1]
                    sink = io.BytesIO()
                    client.download_fileobj(bucket, f"{V2}/blobs/sha256/{hexdigest[:2]}/{hexdigest}/data", sink)

            try:
                for rep in range(reps):
                    drop_caches()
                    times["registry"].append(_timed(lambda: _copy(f"docker://{address}/{REPOSITORY}:{TAG}",
                                                                   workdir / "out-registry")))
                    _check(workdir / "out-registry", manifest)
                    mount.clear_cache()
                    mount.mount(bucket, server.endpoint)
                    drop_caches()
                    layout = mount.mountpoint / REPOSITORY
                    times["view"].append(_timed(lambda: _copy(f"oci:{layout}:{TAG}", workdir / "out-view")))
                    _check(workdir / "out-view", manifest)
                    mount.unmount()
                    times["boto3"].append(_timed(boto3_get))
                    log.info("rep %d: registry %.2f s, view %.2f s, boto3 %.2f s", rep + 1,
                             times["registry"][-1], times["view"][-1], times["boto3"][-1])
            finally:
                mount.unmount()
    return times


def report(size_mib: int, times: dict[str, list[float]]) -> str:
    med = {name: statistics.median(values) for name, values in times.items()}
    lines = [
        f"`skopeo copy` of one {size_mib} MiB image (4 layers) to `dir:`, cold, median of {len(times['view'])}:",
        "",
        "| source | s | MiB/s | ÷ registry | ÷ boto3 |",
        "|---|---|---|---|---|",
    ]
    labels = {"registry": "`docker://` from docker-registry (its s3 driver)",
              "view": "`oci:` from the s3regfs mount, `-o view=oci`",
              "boto3": "boto3 `download_fileobj` of the same blobs (no skopeo)"}
    for name in ("registry", "view", "boto3"):
        lines.append(f"| {labels[name]} | {med[name]:.2f} | {size_mib / med[name]:.0f} | "
                     f"{med[name] / med['registry']:.2f}× | {med[name] / med['boto3']:.2f}× |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=100)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    require_root()
    for tool in ("docker-registry", "skopeo"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed; run scripts/setup.sh --bench")
    with tempfile.TemporaryDirectory(prefix="s3regfs-oci-bench-", dir="/var/tmp") as tmp:
        try:
            times = run(args.size_mib, args.reps, Path(tmp))
        except BenchError as exc:
            raise SystemExit(f"benchmark failed: {exc}") from None
    print(report(args.size_mib, times))
    return 0


if __name__ == "__main__":
    sys.exit(main())
