"""Landing batches of real image files for the throughput benchmarks: 28 px grey PNGs from Fashion-MNIST train
images, and photo-like RGB JPEGs (upscaled, colourised tiles over gradients, blotches and noise), generated once and
reused while complete."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from progress import log

READY_MARKER = "_READY"  # same as synthaug.ingest.landing.READY_MARKER; skipped by scan_batch
SEED = 20240611


def load_fmnist() -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST train images and labels (Debian's `dataset-fashion-mnist`)."""
    from synthaug.ingest.demo_data import load_fashion_mnist

    return load_fashion_mnist("train")


def _variant(img: np.ndarray, variant: int) -> np.ndarray:
    """A distinct copy of a 28x28 tile for batch sizes over 60,000 (content-addressed storage dedups repeats)."""
    if variant == 0:
        return img
    out = [np.fliplr, np.flipud, lambda a: np.rot90(a, 2), lambda a: a][variant % 4](img).copy()
    out[0, 0], out[0, 1] = variant & 0xFF, (variant >> 8) & 0xFF  # makes every variant unique
    return out


def png28(images: np.ndarray, labels: np.ndarray, i: int) -> tuple[int, np.ndarray]:
    """Label and pixels of the `i`-th 28 px image of a PNG batch (distinct variants past 60,000)."""
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
                label, img = png28(images, labels, i)
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
