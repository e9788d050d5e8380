"""Benchmark the training-tensors stage, every figure measured side by side in one run:

(a) augmentation: `synthaug.tensors.prepare.augment_images` (the path `training_tensors` runs for every train chunk:
    per-copy reseeding from image id and copy index, then stacking into the N×C×H×W shard layout) against a
    bare albumentations loop with the same policy (`build_transform`, one Compose per worker, seeded once)
    on the same 32×32 Fashion-MNIST images, both on `--workers` forkserver processes with the same chunks;
(b) loader: images/s `synthaug.tensors.loader` serves (train + copies, GAN normalization, batch 64) with 0 and 2
    workers, against what GAN training can consume: the fp32 matmul peak measured in this run divided by the
    ~105 MFLOP one 32×32 conditional-DCGAN image costs per training iteration (an upper bound: 100% utilisation);
(c) peak RSS of `build_tensors` at each `--mem-sizes` size, each in a fresh interpreter (main process and the
    largest pool worker), to show memory does not grow with the batch size.

The upstream of (b) and (c) is a real pack of 28×28 Fashion-MNIST PNGs plus a clean manifest keeping every
image, written directly (ingest and cleaning have their own benchmarks). Targets are reported, never asserted:
augmentation path >= 0.80 of the bare loop; loader >= 10x the GAN consumption bound; 100k/10k peak RSS <= 1.10.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from ingest_images import png28  # noqa: E402
from ingest_throughput import environment  # noqa: E402
from peak_memory import DescendantPeaks, growth_line, maxrss_bytes, run_fresh_child, run_or_child  # noqa: E402
from progress import log  # noqa: E402

TARGET_AUGMENT_RATIO = 0.80
TARGET_LOADER_FACTOR = 10.0
GAN_FLOP_PER_IMAGE = 105e6  # conditional DCGAN, 32x32, width 32: FLOPs of one D step + one G step per image
SIZE = 32
CHUNK = 128


# --------------------------------------------------------------------------------------------------
# (a) augmentation path vs bare albumentations loop
# --------------------------------------------------------------------------------------------------

_BARE: dict = {}


def bare_job(job: tuple[list[np.ndarray], list[str], object, int]) -> np.ndarray:
    """The bare loop: one Compose per worker (seeded once), `copies` calls per image, results stacked."""
    images, _, policy, copies = job
    from synthaug.tensors.augment import build_transform

    key = (policy, SIZE)
    if key not in _BARE:
        _BARE[key] = build_transform(policy, SIZE)
    transform = _BARE[key]
    out = [transform(image=img)["image"] for img in images for _ in range(copies)]
    return np.stack(out)


def asset_job(job: tuple[list[np.ndarray], list[str], object, int]) -> np.ndarray:
    """The asset's path: `synthaug.tensors.prepare.augment_images` (reseeded per copy, N·K×C×H×W)."""
    images, ids, policy, copies = job
    from synthaug.tensors.prepare import augment_images

    return augment_images(images, ids, policy, SIZE, copies)


def measure_augmentation(count: int, copies: int, workers: int, repeats: int) -> dict:
    """Alternate both contenders `repeats` times over the same chunks on one warm pool; medians."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from synthaug.ingest.demo_data import load_fashion_mnist
    from synthaug.tensors.augment import AugmentPolicy
    from synthaug.tensors.prepare import WORKER_PRELOAD, prepare_image

    images, _ = load_fashion_mnist("train")
    prepared = [prepare_image(img, SIZE, 1, "center_crop")[0] for img in images[:count]]
    ids = [f"img-{i:06d}" for i in range(count)]
    policy = AugmentPolicy.for_channels(1)
    jobs = [(prepared[i : i + CHUNK], ids[i : i + CHUNK], policy, copies) for i in range(0, count, CHUNK)]
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(WORKER_PRELOAD))
    times: dict[str, list[float]] = {"bare": [], "asset": []}
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        for fn in (bare_job, asset_job):  # warm-up: every worker imports and builds its Compose
            list(pool.map(fn, jobs[: 4 * workers]))
        contenders = [("bare", bare_job), ("asset", asset_job)]
        for r in range(repeats):
            for name, fn in contenders if r % 2 == 0 else contenders[::-1]:  # alternate who goes first
                t0 = time.perf_counter()
                produced = sum(len(out) for out in pool.map(fn, jobs))
                times[name].append(time.perf_counter() - t0)
                assert produced == count * copies
            log(
                f"  augmentation round {r + 1}/{repeats}: bare {count * copies / times['bare'][-1]:,.0f} img/s, "
                f"asset path {count * copies / times['asset'][-1]:,.0f} img/s"
            )
    bare = count * copies / statistics.median(times["bare"])
    asset = count * copies / statistics.median(times["asset"])
    # each round's two runs saw the same load: the median of per-round ratios is the steadier figure
    ratio = statistics.median(b / a for b, a in zip(times["bare"], times["asset"], strict=True))
    return {
        "images": count,
        "copies": copies,
        "workers": workers,
        "bare_seconds": times["bare"],
        "asset_seconds": times["asset"],
        "bare_images_per_s": bare,
        "asset_images_per_s": asset,
        "ratio_of_medians": asset / bare,
        "ratio_asset_over_bare": ratio,
        "target_ratio": TARGET_AUGMENT_RATIO,
        "meets_target": ratio >= TARGET_AUGMENT_RATIO,
    }


# --------------------------------------------------------------------------------------------------
# Upstream: a pack of real PNGs and a clean manifest keeping all of them
# --------------------------------------------------------------------------------------------------


def write_clean_set(root: Path, batch: str, count: int, data: tuple[np.ndarray, np.ndarray]) -> None:
    """A raw pack of `count` distinct 28×28 PNGs and a clean manifest that keeps every one."""
    import cv2
    import pyarrow as pa
    import pyarrow.parquet as pq

    from synthaug.core.hashing import pixel_hash, stable_id
    from synthaug.core.layout import DataLayout
    from synthaug.core.packs import PackWriter
    from synthaug.ingest.demo_data import CLASS_NAMES

    layout = DataLayout(root)
    images, labels = data
    writer = PackWriter(layout.raw_dir(batch))
    cols: dict[str, list] = {k: [] for k in ("image_id", "label", "stored_offset", "file_size", "pixel_hash")}
    for i in range(count):
        label, img = png28(images, labels, i)
        ok, buf = cv2.imencode(".png", img)
        if not ok:
            raise ValueError("PNG encoding failed")
        data_bytes = buf.tobytes()
        cols["stored_offset"].append(writer.append(data_bytes))
        cols["file_size"].append(len(data_bytes))
        cols["image_id"].append(stable_id(batch, f"{CLASS_NAMES[label]}/img-{i:06d}.png"))
        cols["label"].append(CLASS_NAMES[label])
        cols["pixel_hash"].append(pixel_hash(img))
    pack = writer.close()
    cols["stored_path"] = [f"raw/{batch}/{pack}"] * count
    cols["status"] = ["kept"] * count
    layout.clean_dir(batch).mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(cols), layout.clean_manifest(batch))


# --------------------------------------------------------------------------------------------------
# (b) loader vs GAN consumption
# --------------------------------------------------------------------------------------------------


def matmul_peak(threads: int, seconds: float = 3.0) -> dict:
    """Best fp32 matmul rate (FLOP/s) of torch on `threads` threads over a few square sizes."""
    import torch

    torch.set_num_threads(threads)
    best, best_n = 0.0, 0
    for n in (512, 1024, 2048):
        a, b = torch.randn(n, n), torch.randn(n, n)
        a @ b
        reps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / 3:
            a @ b
            reps += 1
        rate = 2 * n**3 * reps / (time.perf_counter() - t0)
        if rate > best:
            best, best_n = rate, n
    return {"flop_per_s": best, "matrix_side": best_n, "threads": threads}


def measure_loader(workdir: Path, count: int, copies: int, workers: int, data: tuple[np.ndarray, np.ndarray]) -> dict:
    """Build tensors of `count` images (timed), then time one epoch of the loader with 0 and `workers` workers."""
    from synthaug.core.layout import DataLayout
    from synthaug.tensors.build import build_tensors
    from synthaug.tensors.config import TensorConfig
    from synthaug.tensors.loader import make_loader
    from synthaug.tensors.norm_stats import compute_normalization_stats, write_normalization_stats

    root = workdir / "loader-root"
    shutil.rmtree(root, ignore_errors=True)
    write_clean_set(root, "bench", count, data)
    layout = DataLayout(root)
    t0 = time.perf_counter()
    summary = build_tensors(layout, "bench", TensorConfig(copies=copies), workers=workers)
    build_seconds = time.perf_counter() - t0
    write_normalization_stats(layout, compute_normalization_stats(layout, ["bench"]))
    rates, startup = {}, {}
    for n in (0, workers):
        loader = make_loader(layout, num_workers=n, augmented=True, normalization="gan", batch_size=64)
        for _ in range(2):  # the first epoch warms the page cache; the second counts
            t0 = time.perf_counter()
            rows, first, t_first = 0, 0, t0
            for x, _ in loader:
                if not rows:  # workers start anew every epoch (non-persistent): time that apart
                    first, t_first = len(x), time.perf_counter()
                rows += len(x)
            seconds = time.perf_counter() - t_first
        rates[f"workers_{n}"] = (rows - first) / seconds
        startup[f"workers_{n}"] = t_first - t0
        log(
            f"  loader, {n} workers: {rates[f'workers_{n}']:,.0f} img/s after the first batch "
            f"(second epoch, {rows:,} images; first batch after {t_first - t0:.2f} s)"
        )
    peak = matmul_peak(threads=max(1, workers))
    bound = peak["flop_per_s"] / GAN_FLOP_PER_IMAGE
    best = max(rates.values())
    shutil.rmtree(root, ignore_errors=True)
    return {
        "images": count,
        "rows_per_epoch": rows,
        "build_seconds": build_seconds,
        "build_images_per_s": count / build_seconds,
        "build_counts": summary.counts,
        "loader_images_per_s": rates,
        "loader_first_batch_seconds": startup,
        "matmul_peak": peak,
        "gan_flop_per_image": GAN_FLOP_PER_IMAGE,
        "gan_consumption_bound_images_per_s": bound,
        "loader_over_bound": best / bound,
        "target_factor": TARGET_LOADER_FACTOR,
        "meets_target": best / bound >= TARGET_LOADER_FACTOR,
    }


# --------------------------------------------------------------------------------------------------
# (c) peak RSS of build_tensors in fresh processes
# --------------------------------------------------------------------------------------------------


def mem_child(argv: Sequence[str]) -> int:
    """Subcommand run in a fresh interpreter: build one batch's tensors, print peak RSS as one JSON line."""
    p = argparse.ArgumentParser(prog="augment_throughput.py mem-child")
    p.add_argument("--data-root", type=Path, required=True)
    p.add_argument("--workers", type=int, required=True)
    args = p.parse_args(argv)

    from synthaug.core.layout import DataLayout
    from synthaug.tensors.build import build_tensors
    from synthaug.tensors.config import TensorConfig

    before = maxrss_bytes(resource.RUSAGE_SELF)
    with DescendantPeaks() as peaks:
        t0 = time.perf_counter()
        summary = build_tensors(DataLayout(args.data_root), "bench", TensorConfig(), workers=args.workers)
        seconds = time.perf_counter() - t0
    out = {
        "images": sum(summary.counts[s] for s in ("train", "val", "test")),
        "stored": sum(summary.counts.values()),
        "seconds": seconds,
        "main_before_bytes": before,
        "main_peak_bytes": maxrss_bytes(resource.RUSAGE_SELF),
        "workers_peak_bytes": max(peaks.workers.values(), default=None),
        "workers_seen": len(peaks.workers),
    }
    print(json.dumps(out))
    return 0


def measure_memory(workdir: Path, count: int, workers: int, data: tuple[np.ndarray, np.ndarray]) -> dict:
    """Write a clean set of `count` images, then run `mem-child` on it in a fresh interpreter."""
    root = workdir / f"mem-{count}"
    shutil.rmtree(root, ignore_errors=True)
    write_clean_set(root, "bench", count, data)
    try:
        result = run_fresh_child(__file__, [f"--data-root={root}", f"--workers={workers}"])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    log(
        f"  {count:,} images: main peak {result['main_peak_bytes'] / 2**20:,.1f} MiB, workers peak "
        f"{(result['workers_peak_bytes'] or 0) / 2**20:,.1f} MiB, {result['seconds']:.1f} s"
    )
    return result


# --------------------------------------------------------------------------------------------------
# Report and CLI
# --------------------------------------------------------------------------------------------------


def _mib(n: float | None) -> str:
    return f"{(n or 0) / 2**20:,.1f}"


def format_report(aug: dict | None, loader: dict | None, memory: list[dict]) -> str:
    """The compact results table printed at the end."""
    lines = []
    if aug:
        verdict = "meets" if aug["meets_target"] else "MISSES"
        lines += [
            f"== (a) augmentation, {aug['images']:,} images x {aug['copies']} copies, {aug['workers']} workers, "
            f"median of {len(aug['bare_seconds'])}",
            f"bare albumentations loop {aug['bare_images_per_s']:>10,.0f} img/s",
            f"asset augmentation path  {aug['asset_images_per_s']:>10,.0f} img/s",
            f"ratio asset/bare {aug['ratio_asset_over_bare']:.2f} (median of per-round ratios; ratio of medians "
            f"{aug['ratio_of_medians']:.2f})  target >= {TARGET_AUGMENT_RATIO:.2f} ({verdict})",
            "",
        ]
    if loader:
        verdict = "meets" if loader["meets_target"] else "MISSES"
        peak = loader["matmul_peak"]
        lines += [
            f"== (b) loader over {loader['rows_per_epoch']:,} stored images (train + copies), GAN normalization, "
            "batch 64",
            *(
                f"loader, {k.replace('_', ' ')}: {v:>10,.0f} img/s after the first batch "
                f"(which took {loader['loader_first_batch_seconds'][k]:.2f} s: worker start, once per epoch)"
                for k, v in loader["loader_images_per_s"].items()
            ),
            f"fp32 matmul peak ({peak['threads']} threads, n={peak['matrix_side']}): "
            f"{peak['flop_per_s'] / 1e9:,.1f} GFLOP/s",
            f"GAN consumption bound = peak / {GAN_FLOP_PER_IMAGE / 1e6:.0f} MFLOP per image = "
            f"{loader['gan_consumption_bound_images_per_s']:,.0f} img/s (upper bound: 100% utilisation)",
            f"loader / bound {loader['loader_over_bound']:,.1f}x  target >= {TARGET_LOADER_FACTOR:.0f}x ({verdict})",
            f"(build_tensors end to end: {loader['build_images_per_s']:,.0f} img/s incl. decode, resize, "
            f"{loader['build_counts']['train_aug'] // max(1, loader['build_counts']['train'])} copies per train "
            "image, writing)",
            "",
        ]
    if memory:
        lines.append("== (c) peak RSS of build_tensors, one fresh process per size (MiB)")
        lines.append(f"{'images':>8}{'main before':>13}{'main peak':>11}{'workers peak':>14}{'seconds':>9}")
        for m in memory:
            lines.append(
                f"{m['images']:>8,}{_mib(m['main_before_bytes']):>13}{_mib(m['main_peak_bytes']):>11}"
                f"{_mib(m['workers_peak_bytes']):>14}{m['seconds']:>9.1f}"
            )
        if len(memory) >= 2:
            small, large = memory[0], memory[-1]
            for what, key in (("main peak", "main_peak_bytes"), ("workers peak", "workers_peak_bytes")):
                lines.append(growth_line(what, f"{large['images']:,}/{small['images']:,}", small[key], large[key]))
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Benchmark training tensors: augmentation path, loader, peak memory.")
    p.add_argument("--images", type=int, default=4000, help="images for the augmentation comparison (default 4000)")
    p.add_argument("--copies", type=int, default=2, help="augmented copies per image (default 2)")
    p.add_argument("--repeats", type=int, default=7, help="alternating rounds of (a); medians are reported")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--loader-images", type=int, default=20_000, help="images behind the loader (default 20000)")
    p.add_argument("--mem-sizes", type=int, nargs="+", default=[10_000, 100_000], help="sizes for (c)")
    p.add_argument("--skip-augment", action="store_true")
    p.add_argument("--skip-loader", action="store_true")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--workdir", type=Path, help="scratch folder (default: a temporary folder, removed at the end)")
    p.add_argument("--json", type=Path, help="also write the results as JSON to this path")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; `mem-child` as the first argument runs the peak-memory subprocess instead."""
    return run_or_child(argv, mem_child, lambda rest: run(parse_args(rest)))


def run(args: argparse.Namespace) -> int:
    """The benchmark itself, on parsed arguments."""
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="synthaug-tensors-bench-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        from synthaug.ingest.demo_data import load_fashion_mnist

        data = load_fashion_mnist("train")
        aug = loader = None
        memory = []
        if not args.skip_augment:
            log("(a) augmentation path vs bare albumentations loop")
            aug = measure_augmentation(args.images, args.copies, args.workers, args.repeats)
        if not args.skip_loader:
            log("(b) loader vs GAN consumption")
            loader = measure_loader(workdir, args.loader_images, args.copies, args.workers, data)
        if not args.skip_memory:
            for n in args.mem_sizes:
                log(f"(c) peak RSS of build_tensors at {n:,} images, fresh process")
                memory.append(measure_memory(workdir, n, args.workers, data))
        print(format_report(aug, loader, memory))
        if args.json:
            doc = {"environment": environment(), "augmentation": aug, "loader": loader, "memory": memory}
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(doc, indent=2) + "\n")
            log(f"wrote {args.json}")
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
