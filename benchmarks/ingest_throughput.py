"""Benchmark `synthaug.ingest.batch.ingest_batch`: throughput against a bare decode loop, and peak memory vs batch size.

Generates real images into a landing folder (`<workdir>/landing/<batch>/<class>/<file>`):

* `png28-<N>`: 28x28 grey PNGs made from Fashion-MNIST train images (Debian's `dataset-fashion-mnist`);
* `jpeg256-<N>`: 256x256 RGB JPEGs (quality 90), upscaled Fashion-MNIST tiles colorized over smooth
  gradients, low-frequency blotches and sensor-like noise, so no two look alike.

Then, for each set, alternately and `--repeats` times (median reported), with the page cache warm:

1. a bare loop, single process: read the file bytes and `cv2.imdecode(..., IMREAD_UNCHANGED)`;
2. `ingest_batch(..., IngestOptions(workers=--workers))` into a fresh data root.

Finally it ingests PNG batches of each `--mem-sizes` size in a fresh subprocess and reports the peak RSS
of that process (`RUSAGE_SELF`) and of the largest worker (`RUSAGE_CHILDREN`, read after the
forkserver that parents the workers has been stopped and reaped).

Targets (reported, never asserted): ingest >= 50% of the bare decode rate; peak memory does not grow
with batch size. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from ingest_images import ImageSet, ensure_set, list_files, load_fmnist
from page_cache import warm_cache
from peak_memory import (
    MEMORY_GROWTH_TOLERANCE,
    DescendantPeaks,
    growth_line,
    maxrss_bytes,
    mib,
    run_fresh_child,
    run_or_child,
    vm_hwm_bytes,
)
from progress import log

TARGET_RATIO = 0.5


# --------------------------------------------------------------------------------------------------
# Throughput
# --------------------------------------------------------------------------------------------------


def bare_decode(paths: Sequence[Path]) -> float:
    """Seconds for read + `cv2.imdecode(IMREAD_UNCHANGED)` of every file, single process."""
    import cv2

    t0 = time.perf_counter()
    for p in paths:
        with open(p, "rb") as fh:
            data = fh.read()
        if cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) is None:
            raise ValueError(f"cv2 could not decode {p}")
    return time.perf_counter() - t0


def run_ingest(batch_dir: Path, landing: Path, data_root: Path, workers: int) -> float:
    """Seconds for `ingest_batch` of the whole batch into a fresh `data_root` (removed afterwards)."""
    from synthaug.core.layout import DataLayout
    from synthaug.ingest.batch import IngestOptions, ingest_batch

    shutil.rmtree(data_root, ignore_errors=True)
    try:
        t0 = time.perf_counter()
        summary = ingest_batch(batch_dir, DataLayout(data_root), landing, IngestOptions(workers=workers))
        seconds = time.perf_counter() - t0
        if summary.ok != summary.total:
            errors = dict(summary.errors)
            log(f"  warning: ingest of {batch_dir.name}: {summary.ok}/{summary.total} ok, errors {errors}")
        return seconds
    finally:
        shutil.rmtree(data_root, ignore_errors=True)


@dataclass
class ThroughputResult:
    """Median rates of one image set."""

    set: str
    files: int
    mean_file_bytes: float
    bare_seconds: list[float] = field(default_factory=list)
    ingest_seconds: list[float] = field(default_factory=list)

    @property
    def bare_rate(self) -> float:
        return self.files / statistics.median(self.bare_seconds)

    @property
    def ingest_rate(self) -> float:
        return self.files / statistics.median(self.ingest_seconds)

    @property
    def ratio(self) -> float:
        return self.ingest_rate / self.bare_rate

    def to_json(self) -> dict:
        return asdict(self) | {
            "bare_images_per_s": self.bare_rate,
            "ingest_images_per_s": self.ingest_rate,
            "ratio_ingest_over_bare": self.ratio,
            "target_ratio": TARGET_RATIO,
            "meets_target": self.ratio >= TARGET_RATIO,
        }


def measure_throughput(s: ImageSet, landing: Path, runs_dir: Path, repeats: int, workers: int) -> ThroughputResult:
    """Alternate bare decode and ingest `repeats` times over the same warm files."""
    paths = list_files(s.batch_dir, landing)
    warm_cache(paths)
    result = ThroughputResult(s.name, len(paths), s.bytes_total / max(1, len(paths)))
    for r in range(repeats):
        result.bare_seconds.append(bare_decode(paths))
        result.ingest_seconds.append(run_ingest(s.batch_dir, landing, runs_dir / f"{s.name}-{r}", workers))
        log(
            f"  {s.name} round {r + 1}/{repeats}: bare {len(paths) / result.bare_seconds[-1]:,.0f} img/s, "
            f"ingest {len(paths) / result.ingest_seconds[-1]:,.0f} img/s"
        )
    return result


# --------------------------------------------------------------------------------------------------
# Peak memory (fresh subprocess per batch size)
# --------------------------------------------------------------------------------------------------


def mem_child(argv: Sequence[str]) -> int:
    """Subcommand run in a fresh interpreter: ingest one batch, print peak RSS as one JSON line."""
    p = argparse.ArgumentParser(prog="ingest_throughput.py mem-child")
    p.add_argument("--batch-dir", type=Path, required=True)
    p.add_argument("--landing", type=Path, required=True)
    p.add_argument("--data-root", type=Path, required=True)
    p.add_argument("--workers", type=int, required=True)
    args = p.parse_args(argv)

    import multiprocessing.forkserver

    from synthaug.core.layout import DataLayout
    from synthaug.ingest.batch import IngestOptions, ingest_batch

    before = maxrss_bytes(resource.RUSAGE_SELF)
    options = IngestOptions(workers=args.workers)
    with DescendantPeaks() as peaks:
        t0 = time.perf_counter()
        summary = ingest_batch(args.batch_dir, DataLayout(args.data_root), args.landing, options)
        seconds = time.perf_counter() - t0
    # Pool workers are children of the forkserver, so their peak RSS reaches RUSAGE_CHILDREN of this
    # process only once the forkserver itself has exited and been reaped.
    server = getattr(multiprocessing.forkserver, "_forkserver", None)
    forkserver_stopped = False
    if server is not None and hasattr(server, "_stop"):
        server._stop()
        forkserver_stopped = True
    out = {
        "files": summary.total,
        "ok": summary.ok,
        "seconds": seconds,
        "main_before_bytes": before,
        "main_peak_bytes": maxrss_bytes(resource.RUSAGE_SELF),
        "main_vm_hwm_bytes": vm_hwm_bytes(),
        "children_maxrss_bytes": maxrss_bytes(resource.RUSAGE_CHILDREN),
        "workers_peak_bytes": max(peaks.workers.values(), default=None),
        "workers_seen": len(peaks.workers),
        "helpers_peak_bytes": max(peaks.helpers.values(), default=None),
        "forkserver_stopped": forkserver_stopped,
    }
    print(json.dumps(out))
    return 0


@dataclass
class MemoryResult:
    """Peak RSS of one ingest in a fresh process (bytes)."""

    files: int
    ok: int
    seconds: float
    main_before_bytes: int
    main_peak_bytes: int
    main_vm_hwm_bytes: int | None
    children_maxrss_bytes: int
    workers_peak_bytes: int | None
    workers_seen: int
    helpers_peak_bytes: int | None
    forkserver_stopped: bool


def measure_memory(s: ImageSet, landing: Path, runs_dir: Path, workers: int) -> MemoryResult:
    """Run `mem-child` for one batch in a fresh interpreter and parse its JSON line."""
    data_root = runs_dir / f"mem-{s.name}"
    shutil.rmtree(data_root, ignore_errors=True)
    args = [f"--batch-dir={s.batch_dir}", f"--landing={landing}", f"--data-root={data_root}", f"--workers={workers}"]
    try:
        data = run_fresh_child(__file__, args)
    finally:
        shutil.rmtree(data_root, ignore_errors=True)
    if data["ok"] != data["files"]:
        log(f"  warning: {data['ok']}/{data['files']} files ok in {s.name}")
    return MemoryResult(**data)


# --------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------


def format_report(
    throughput: list[ThroughputResult], memory: list[MemoryResult], workers: int, repeats: int, runs_parent: Path
) -> str:
    """The compact results table printed at the end."""
    lines = [
        f"== ingest throughput (median of {repeats}; bare = 1 process read + cv2.imdecode; "
        f"ingest workers={workers}; data roots under {runs_parent} [{_fs_type(runs_parent)}])"
    ]
    if throughput:
        lines.append(
            f"{'set':<22}{'files':>8}{'KiB/file':>10}{'bare img/s':>12}{'ingest img/s':>14}{'ratio':>8}  target"
        )
        for t in throughput:
            verdict = "meets" if t.ratio >= TARGET_RATIO else "MISSES"
            lines.append(
                f"{t.set:<22}{t.files:>8,}{t.mean_file_bytes / 1024:>10.1f}{t.bare_rate:>12,.0f}"
                f"{t.ingest_rate:>14,.0f}{t.ratio:>8.2f}  >= {TARGET_RATIO:.2f} ({verdict})"
            )
    else:
        lines.append("(skipped)")
    lines.append("")
    lines.append("== peak RSS of ingest of 28px PNG batches, one fresh process per size (MiB)")
    if memory:
        lines.append(
            f"{'files':>8}{'main before':>13}{'main peak':>11}{'workers peak':>14}{'RUSAGE_CHILDREN':>17}"
            f"{'seconds':>9}{'img/s':>8}"
        )
        for m in memory:
            lines.append(
                f"{m.files:>8,}{mib(m.main_before_bytes):>13}{mib(m.main_peak_bytes):>11}"
                f"{mib(m.workers_peak_bytes or 0):>14}{mib(m.children_maxrss_bytes):>17}"
                f"{m.seconds:>9.1f}{m.files / m.seconds:>8,.0f}"
            )
        if len(memory) >= 2:
            small, large = memory[0], memory[-1]
            for what, a, b in (
                ("main peak", small.main_peak_bytes, large.main_peak_bytes),
                ("workers peak", small.workers_peak_bytes or 0, large.workers_peak_bytes or 0),
                ("RUSAGE_CHILDREN", small.children_maxrss_bytes, large.children_maxrss_bytes),
            ):
                lines.append(growth_line(what, f"{large.files:,}/{small.files:,}", a, b))
        lines.append(
            "main = ru_maxrss(SELF); workers = max VmHWM of pool workers, polled every 0.1 s; "
            "RUSAGE_CHILDREN = ru_maxrss(CHILDREN) after reaping the forkserver (it also counts the "
            "forkserver, whose ru_maxrss starts at the main process's RSS when the pool started)"
        )
        if not all(m.forkserver_stopped for m in memory):
            lines.append("note: forkserver could not be stopped; RUSAGE_CHILDREN may miss the workers")
    else:
        lines.append("(skipped)")
    return "\n".join(lines)


def _fs_type(path: Path) -> str:
    """Filesystem type of the mount holding `path` (Linux), e.g. ext4 or tmpfs; '?' when unknown."""
    best, fstype = "", "?"
    try:
        with open("/proc/self/mounts") as fh:
            for line in fh:
                parts = line.split()
                mount = parts[1].replace("\\040", " ")
                inside = str(path).startswith(mount.rstrip("/") + "/") or str(path) == mount
                if inside and len(mount) >= len(best):
                    best, fstype = mount, parts[2]
    except OSError:
        pass
    return fstype


def environment() -> dict:
    """What the numbers were measured on."""
    import cv2
    import PIL
    import simplejpeg

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cv2": cv2.__version__,
        "pillow": PIL.__version__,
        "simplejpeg": simplejpeg.__version__,
        "argv": sys.argv,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


# --------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Benchmark synthaug ingest: throughput vs a bare cv2 decode loop, and peak memory vs batch size.",
    )
    p.add_argument("--workdir", type=Path, help="keep generated images here and reuse them (default: a temp folder)")
    p.add_argument("--pngs", type=int, default=10_000, help="28x28 grey PNGs in the throughput set (default 10000)")
    p.add_argument("--jpegs", type=int, default=2_000, help="RGB JPEGs in the throughput set (default 2000)")
    p.add_argument("--jpeg-size", type=int, default=256, help="JPEG side in pixels (default 256)")
    p.add_argument("--repeats", type=int, default=3, help="alternating rounds per set; the median is reported")
    p.add_argument("--workers", type=int, default=2, help="ingest worker processes (default 2)")
    p.add_argument(
        "--mem-sizes",
        type=int,
        nargs="+",
        default=[10_000, 100_000],
        help="PNG batch sizes for the peak-memory runs (default 10000 100000)",
    )
    p.add_argument(
        "--runs-dir",
        type=Path,
        help="where the fresh data roots of the ingest runs go (default: <workdir>/runs); e.g. /dev/shm to "
        "take storage speed out of the ingest numbers",
    )
    p.add_argument("--skip-throughput", action="store_true", help="only run the peak-memory part")
    p.add_argument("--skip-memory", action="store_true", help="only run the throughput part")
    p.add_argument("--json", type=Path, help="also write the results as JSON to this path")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; `mem-child` as the first argument runs the peak-memory subprocess instead."""
    return run_or_child(argv, mem_child, lambda rest: run(parse_args(rest)))


def run(args: argparse.Namespace) -> int:
    """The benchmark itself, on parsed arguments."""
    cleanup: Callable[[], None] = lambda: None  # noqa: E731
    if args.workdir:
        workdir = args.workdir.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        workdir = Path(tempfile.mkdtemp(prefix="synthaug-ingest-bench-"))
        cleanup = lambda: shutil.rmtree(workdir, ignore_errors=True)  # noqa: E731
    landing = workdir / "landing"
    landing.mkdir(exist_ok=True)
    runs_parent = (args.runs_dir or workdir / "runs").resolve()
    runs_parent.mkdir(parents=True, exist_ok=True)
    runs_dir = Path(tempfile.mkdtemp(prefix="ingest-runs-", dir=runs_parent))
    log(f"workdir {workdir}; ingest data roots under {runs_dir}")
    try:
        data = load_fmnist()
        throughput: list[ThroughputResult] = []
        memory: list[MemoryResult] = []
        if not args.skip_throughput:
            sets = [
                ensure_set(landing, "png28", args.pngs, data, args.jpeg_size),
                ensure_set(landing, "jpeg256", args.jpegs, data, args.jpeg_size),
            ]
            for s in sets:
                log(f"throughput: {s.name}")
                throughput.append(measure_throughput(s, landing, runs_dir, args.repeats, args.workers))
        if not args.skip_memory:
            for n in args.mem_sizes:
                s = ensure_set(landing, "png28", n, data, args.jpeg_size)
                log(f"memory: {s.name} in a fresh process")
                memory.append(measure_memory(s, landing, runs_dir, args.workers))
        report = format_report(throughput, memory, args.workers, args.repeats, runs_parent)
        print(report)
        if args.json:
            doc = {
                "environment": environment(),
                "workdir": str(workdir),
                "runs_dir": str(runs_parent),
                "runs_fs": _fs_type(runs_parent),
                "workers": args.workers,
                "repeats": args.repeats,
                "throughput": [t.to_json() for t in throughput],
                "memory": [asdict(m) for m in memory],
                "targets": {
                    "ingest_over_bare_min": TARGET_RATIO,
                    "memory_growth_max": MEMORY_GROWTH_TOLERANCE,
                },
            }
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(doc, indent=2) + "\n")
            log(f"wrote {args.json}")
    finally:
        shutil.rmtree(runs_dir, ignore_errors=True)
        cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
