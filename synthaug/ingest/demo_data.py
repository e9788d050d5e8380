"""Fashion-MNIST as demo data: read it from Debian's `dataset-fashion-mnist` (or torchvision where there is
internet) and land the train split as PNG batches (any labeled image arrays land the same way, `land_arrays`). The
official test split is never landed."""

from __future__ import annotations

import gzip
import os
import shutil
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from synthaug.core.errors import InvalidInput, SynthaugError
from synthaug.ingest.landing import READY_MARKER, invalid_batch_id_reason

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
CLASS_NAMES = (
    "T-shirt_top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle_boot",
)
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


class DemoDataUnavailable(SynthaugError, RuntimeError):
    """Fashion-MNIST is neither installed nor downloadable here."""


@dataclass(frozen=True)
class ExportResult:
    """What the exporter landed: batch folders and images per class in each."""

    batch_dirs: list[Path]
    per_batch_counts: list[dict[str, int]]


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise InvalidInput(f"{path} is not an unsigned-byte IDX file (header {data[:4].hex()})")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _find(directory: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (directory / name).is_file():
            return directory / name
    return None


def load_fashion_mnist(
    split: str = "train", source_dir: Path | None = None, download_dir: Path | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return (images N×28×28 uint8, labels N) of the `train` or `test` split.

    Looks in `source_dir` (default: Debian's package folder); if absent and `download_dir` is given,
    falls back to torchvision's downloader.
    """
    if split not in _FILES:
        raise InvalidInput(f"split must be 'train' or 'test', not {split!r}")
    directory = Path(source_dir) if source_dir else DEBIAN_DIR
    image_stem, label_stem = _FILES[split]
    images_path, labels_path = _find(directory, image_stem), _find(directory, label_stem)
    if images_path and labels_path:
        return read_idx(images_path), read_idx(labels_path)
    if download_dir is not None:
        return _download_with_torchvision(split, Path(download_dir))
    raise DemoDataUnavailable(
        f"Fashion-MNIST {split} files not found in {directory}. Install them with "
        "`apt-get install -y dataset-fashion-mnist`, or pass a download folder to use torchvision's "
        "downloader where there is internet."
    )


def _download_with_torchvision(split: str, download_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    from torchvision.datasets import FashionMNIST

    try:
        ds = FashionMNIST(str(download_dir), train=(split == "train"), download=True)
    except Exception as exc:  # noqa: BLE001 - network errors come in many types
        raise DemoDataUnavailable(
            f"Fashion-MNIST is not installed and the download into {download_dir} failed ({exc}). "
            "Install it with `apt-get install -y dataset-fashion-mnist`."
        ) from exc
    return ds.data.numpy(), ds.targets.numpy().astype(np.uint8)


def export_to_landing(
    landing: Path,
    per_class: int = 300,
    batches: int = 3,
    batch_prefix: str = "fmnist",
    source_dir: Path | None = None,
    download_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
    class_counts: Sequence[int] | None = None,
) -> ExportResult:
    """Land `per_class` Fashion-MNIST train images of each class as PNGs, split evenly into `batches` arrival
    batches; `class_counts` (one count per class, in CLASS_NAMES order) lands a long-tailed set instead."""
    counts_wanted = list(class_counts) if class_counts is not None else [per_class] * len(CLASS_NAMES)
    images, labels = load_fashion_mnist("train", source_dir, download_dir)
    return land_arrays(landing, images, labels, CLASS_NAMES, counts_wanted, batches, batch_prefix, progress)


def land_arrays(
    landing: Path,
    images: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    class_counts: Sequence[int],
    batches: int = 1,
    batch_prefix: str = "batch",
    progress: Callable[[str], None] | None = None,
) -> ExportResult:
    """Land the first `class_counts[c]` images (N×H×W or N×H×W×3 uint8, in array order) of each class `c` of
    `labels` as PNGs in `landing/<prefix>-NNN/<class_names[c]>/`, split evenly into `batches` arrival batches.

    The same arguments always land the same files. Each batch is written into a hidden folder and renamed into place
    with its `_READY` marker, so a watcher never sees a half-written batch. Existing batches with the same name are
    left alone."""
    counts_wanted = list(class_counts)
    if len(counts_wanted) != len(class_names):
        raise InvalidInput(f"class_counts needs one count per class ({len(class_names)}), got {len(counts_wanted)}")
    if min(counts_wanted) < 1 or batches < 1:
        raise InvalidInput(f"per-class counts ({min(counts_wanted)}) and batches ({batches}) must both be at least 1")
    if min(counts_wanted) < batches:
        raise InvalidInput(
            f"per-class counts ({min(counts_wanted)}) must be at least batches ({batches}) so no batch misses a class"
        )
    landing = Path(landing)
    landing.mkdir(parents=True, exist_ok=True)
    chosen = {c: np.flatnonzero(labels == c)[:n] for c, n in enumerate(counts_wanted)}
    short = {c: len(idx) for c, idx in chosen.items() if len(idx) < counts_wanted[c]}
    if short:
        raise InvalidInput(
            f"there are fewer than {max(counts_wanted[c] for c in short)} images for "
            f"{ {class_names[c]: n for c, n in short.items()} }: land fewer per class"
        )
    result = ExportResult([], [])
    for b in range(batches):
        batch_id = f"{batch_prefix}-{b + 1:03d}"
        if reason := invalid_batch_id_reason(batch_id):
            raise InvalidInput(reason)
        final = landing / batch_id
        counts = {}
        if final.exists():
            if progress:
                progress(f"{final} exists; left unchanged")
            result.batch_dirs.append(final)
            result.per_batch_counts.append(_count_pngs(final))
            continue
        staging = landing / f".{batch_id}.partial-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        for c, idx in chosen.items():
            part = np.array_split(idx, batches)[b]
            class_dir = staging / class_names[c]
            class_dir.mkdir(parents=True, exist_ok=True)
            for i in part:
                image = images[i] if images[i].ndim == 2 else cv2.cvtColor(images[i], cv2.COLOR_RGB2BGR)
                if not cv2.imwrite(str(class_dir / f"train-{int(i):05d}.png"), image):
                    raise OSError(f"could not write {class_dir / f'train-{int(i):05d}.png'}")
            counts[class_names[c]] = len(part)
        (staging / READY_MARKER).write_text("written by synthaug demo-data\n")
        os.rename(staging, final)
        result.batch_dirs.append(final)
        result.per_batch_counts.append(counts)
        if progress:
            progress(f"landed {final} ({sum(counts.values())} images)")
    return result


def _count_pngs(batch_dir: Path) -> dict[str, int]:
    return {d.name: len(list(d.glob("*.png"))) for d in sorted(batch_dir.iterdir()) if d.is_dir()}
