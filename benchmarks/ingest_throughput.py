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
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

TARGET_RATIO = 0.5
MEMORY_GROWTH_TOLERANCE = 1.10  # 100k/10k peak ratio up to this counts as "does not grow"
READY_MARKER = "_READY"  # same as synthaug.ingest.landing.READY_MARKER; skipped by scan_batch
SEED = 20240611


def log(message: str) -> None:
    """Progress line on stderr, so stdout keeps only the results."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------
# Data generation
# --------------------------------------------------------------------------------------------------


def _load_fmnist() -> tuple[np.ndarray, np.ndarray]:
    from synthaug.ingest.demo_data import load_fashion_mnist

    return load_fashion_mnist("train")


def _variant(img: np.ndarray, variant: int) -> np.ndarray:
    """A distinct copy of a 28x28 tile for batch sizes over 60,000 (content-addressed storage dedups repeats)."""
    if variant == 0:
        return img
    out = [np.fliplr, np.flipud, lambda a: np.rot90(a, 2), lambda a: a][variant % 4](img).copy()
    out[0, 0], out[0, 1] = variant & 0xFF, (variant >> 8) & 0xFF  # makes every variant unique
    return out


def _png28(images: np.ndarray, labels: np.ndarray, i: int) -> tuple[int, np.ndarray]:
    n = len(images)
    return int(labels[i % n]), _variant(images[i % n], i // n)


def _gradient(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth two-colour linear gradient at a random angle, plus low-frequency colour blotches."""
    import cv2

    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1)
    t = np.clip((np.cos(angle) * (xx - 0.5) + np.sin(angle) * (yy - 0.5)) + 0.5, 0, 1)[..., None]
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    grad = c0 * (1 - t) + c1 * t
    coarse = rng.normal(0, rng.uniform(10, 40), (rng.integers(3, 9), rng.integers(3, 9), 3)).astype(np.float32)
    blotches = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    return grad + blotches


def _jpeg_image(images: np.ndarray, labels: np.ndarray, i: int, size: int) -> tuple[int, np.ndarray]:
    """A photo-like RGB image: colorized, upscaled Fashion-MNIST tile over a gradient, with noise."""
    import cv2

    rng = np.random.default_rng((SEED, i))
    k = int(rng.integers(len(images)))
    tile = images[k]
    if rng.random() < 0.5:
        tile = np.fliplr(tile)
    scale = rng.uniform(0.6, 1.0)
    inner = max(8, int(size * scale))
    up = cv2.resize(tile, (inner, inner), interpolation=cv2.INTER_CUBIC)
    mask_small = np.zeros((size, size), np.uint8)
    oy, ox = rng.integers(0, size - inner + 1, 2)
    mask_small[oy : oy + inner, ox : ox + inner] = up
    shade = mask_small.astype(np.float32) / 255.0
    colormaps = (
        cv2.COLORMAP_JET,
        cv2.COLORMAP_BONE,
        cv2.COLORMAP_AUTUMN,
        cv2.COLORMAP_OCEAN,
        cv2.COLORMAP_PINK,
        cv2.COLORMAP_VIRIDIS,
        cv2.COLORMAP_TWILIGHT,
    )
    fg = cv2.applyColorMap(mask_small, colormaps[int(rng.integers(len(colormaps)))]).astype(np.float32)
    tint = rng.uniform(0.6, 1.2, 3).astype(np.float32)
    alpha = np.clip(shade * rng.uniform(1.2, 3.0), 0, 1)[..., None]
    img = _gradient(rng, size) * (1 - alpha) + fg * tint * alpha
    img += rng.normal(0, rng.uniform(1.5, 8.0), img.shape).astype(np.float32)
    if rng.random() < 0.3:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.5))
    return int(labels[k]), np.clip(img, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class ImageSet:
    """A generated landing batch."""

    name: str
    kind: str  # "png28" or "jpeg256"
    count: int
    batch_dir: Path
    bytes_total: int


def ensure_set(landing: Path, kind: str, count: int, data: tuple[np.ndarray, np.ndarray], jpeg_size: int) -> ImageSet:
    """Generate (or reuse, when complete) the batch `<kind>-<count>` under `landing`."""
    import cv2

    from synthaug.ingest.demo_data import CLASS_NAMES

    name = f"{kind}-{count}" if kind == "png28" else f"{kind}-{jpeg_size}px-{count}"
    final = landing / name
    stamp = f"synthaug ingest benchmark: {kind} x {count}\n"
    marker = final / READY_MARKER
    if marker.is_file() and marker.read_text() == stamp:
        log(f"reusing {final}")
    else:
        log(f"generating {count:,} {kind} images into {final}")
        shutil.rmtree(final, ignore_errors=True)
        staging = landing / f".{name}.partial-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        for cls in CLASS_NAMES:
            (staging / cls).mkdir(parents=True)
        images, labels = data
        t0 = time.perf_counter()
        for i in range(count):
            if kind == "png28":
                label, img = _png28(images, labels, i)
                path, params = staging / CLASS_NAMES[label] / f"img-{i:06d}.png", []
            else:
                label, img = _jpeg_image(images, labels, i, jpeg_size)
                path, params = staging / CLASS_NAMES[label] / f"img-{i:06d}.jpg", [cv2.IMWRITE_JPEG_QUALITY, 90]
            if not cv2.imwrite(str(path), img, params):
                raise OSError(f"could not write {path}")
            if (i + 1) % 20000 == 0:
                log(f"  {i + 1:,}/{count:,} written")
        marker_tmp = staging / READY_MARKER
        marker_tmp.write_text(stamp)
        os.rename(staging, final)
        log(f"  done in {time.perf_counter() - t0:.1f}s")
    total = sum(p.stat().st_size for p in list_files(final, landing))
    return ImageSet(name, kind, count, final, total)


def list_files(batch_dir: Path, landing: Path) -> list[Path]:
    """The files ingest will read, in ingest's order (from `synthaug.ingest.landing.scan_batch`)."""
    from synthaug.ingest.landing import scan_batch

    return [batch_dir / f.rel_path for f in scan_batch(batch_dir, landing).files]


# --------------------------------------------------------------------------------------------------
# Throughput
# --------------------------------------------------------------------------------------------------


def warm_cache(paths: Sequence[Path]) -> None:
    """Read every file once so both contenders start from a warm page cache."""
    for p in paths:
        with open(p, "rb") as fh:
            fh.read()


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


def _maxrss_bytes(who: int) -> int:
    rss = resource.getrusage(who).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # KiB on Linux, bytes on macOS


def _vm_hwm_bytes(pid: int | str = "self") -> int | None:
    """Peak RSS of one live process's current address space (`VmHWM`, Linux only), or None."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def _children(pid: int) -> list[int]:
    pids: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                pids.extend(int(c) for c in fh.read().split())
    except OSError:
        pass
    return pids


class DescendantPeaks:
    """Polls `VmHWM` of this process's children (forkserver, resource tracker) and grandchildren (pool workers).

    `VmHWM` only rises, so the last value seen before a process exits is its peak up to the last poll.
    """

    def __init__(self, interval_s: float = 0.1) -> None:
        import threading

        self.interval_s = interval_s
        self.helpers: dict[int, int] = {}
        self.workers: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> DescendantPeaks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            self.poll(me)
            self._stop.wait(self.interval_s)

    def poll(self, me: int) -> None:
        for child in _children(me):
            self._note(self.helpers, child)
            for grandchild in _children(child):
                self._note(self.workers, grandchild)

    @staticmethod
    def _note(peaks: dict[int, int], pid: int) -> None:
        hwm = _vm_hwm_bytes(pid)
        if hwm is not None:
            peaks[pid] = max(peaks.get(pid, 0), hwm)


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

    before = _maxrss_bytes(resource.RUSAGE_SELF)
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
        "main_peak_bytes": _maxrss_bytes(resource.RUSAGE_SELF),
        "main_vm_hwm_bytes": _vm_hwm_bytes(),
        "children_maxrss_bytes": _maxrss_bytes(resource.RUSAGE_CHILDREN),
        "workers_peak_bytes": max(peaks.workers.values(), default=None),
        "workers_seen": len(peaks.workers),
        "helpers_peak_bytes": max(peaks.helpers.values(), default=None),
        "forkserver_stopped": forkserver_stopped,
    }
    print(json.dumps(out))
    return 0


# ru_maxrss survives fork+exec: a process started by this (big) benchmark process would report at least our
# RSS as its own peak. Starting it through a tiny interpreter gives it a clean ~10 MiB baseline.
_LEAN_LAUNCHER = "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:]).returncode)"


def run_fresh_child(script: str | Path, args: Sequence[str]) -> dict:
    """Run `script mem-child args...` in a fresh interpreter started through the lean launcher and return the JSON
    object its last stdout line holds; a failing child raises RuntimeError with its stderr."""
    cmd = [sys.executable, "-c", _LEAN_LAUNCHER, sys.executable, str(Path(script).resolve()), "mem-child", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"mem-child failed ({proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


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


def growth_line(what: str, sizes: str, a: int | None, b: int | None) -> str:
    """`what sizes: ratio (+MiB) target (verdict)` for a peak measured at two sizes; n/a when a peak is missing
    (e.g. no worker processes ran with --workers 1)."""
    if not a or not b:
        return f"{what:<16}{sizes}: n/a (not measured at both sizes)"
    ratio = b / a
    verdict = "meets" if ratio <= MEMORY_GROWTH_TOLERANCE else "MISSES"
    return (
        f"{what:<16}{sizes}: {ratio:.2f}x ({(b - a) / 2**20:+,.1f} MiB)  "
        f"target: no growth, <= {MEMORY_GROWTH_TOLERANCE:.2f}x ({verdict})"
    )


def _mib(n: float) -> str:
    return f"{n / 2**20:,.1f}"


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
                f"{m.files:>8,}{_mib(m.main_before_bytes):>13}{_mib(m.main_peak_bytes):>11}"
                f"{_mib(m.workers_peak_bytes or 0):>14}{_mib(m.children_maxrss_bytes):>17}"
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


def run_or_child(argv: Sequence[str] | None, child: Callable[[list[str]], int], run: Callable[[list[str]], int]) -> int:
    """A benchmark's entry: `mem-child` as the first argument runs the peak-memory subprocess `child`, else `run`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    return child(argv[1:]) if argv[:1] == ["mem-child"] else run(argv)


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
        data = _load_fmnist()
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
