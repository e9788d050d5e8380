"""Per image, in the build's worker processes: decode a kept image, resize and convert it to the configured size and
channels, and make the seeded augmented copies of train images; a chunk of rows at a time."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from synthaug.core.packs import read_object
from synthaug.ingest.imageio import decode_image
from synthaug.tensors.augment import Augmenter, AugmentPolicy


def prepare_image(pixels: np.ndarray, size: int, channels: int, fit: str) -> tuple[np.ndarray, list[str]]:
    """Convert decoded pixels to `size`×`size`×`channels` uint8; return them with a note for every change."""
    notes: list[str] = []
    source_channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if source_channels != channels:
        if channels == 1:
            pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
            notes.append("rgb->grey")
        else:
            pixels = cv2.cvtColor(pixels, cv2.COLOR_GRAY2RGB)
            notes.append("grey->rgb")
    h, w = pixels.shape[:2]
    if h != w and fit == "center_crop":
        side = min(h, w)
        y0, x0 = (h - side) // 2, (w - side) // 2
        pixels = pixels[y0 : y0 + side, x0 : x0 + side]
        notes.append(f"center-cropped {w}x{h}->{side}x{side}")
    elif h != w and fit == "pad":
        side = max(h, w)
        top, left = (side - h) // 2, (side - w) // 2
        pixels = cv2.copyMakeBorder(pixels, top, side - h - top, left, side - w - left, cv2.BORDER_CONSTANT, value=0)
        notes.append(f"padded {w}x{h}->{side}x{side}")
    elif h != w:
        notes.append(f"stretched {w}x{h}")
    ph, pw = pixels.shape[:2]
    if (ph, pw) != (size, size):
        shrinking = ph > size or pw > size
        pixels = cv2.resize(
            np.ascontiguousarray(pixels),
            (size, size),
            interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR,
        )
        notes.append(f"resized {pw}x{ph}->{size}x{size}")
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    return np.ascontiguousarray(pixels), notes


def to_chw(images: list[np.ndarray], channels: int, size: int) -> np.ndarray:
    """Stack HxWxC images into one contiguous N×C×H×W uint8 array (the shard layout)."""
    out = np.empty((len(images), channels, size, size), dtype=np.uint8)
    for i, img in enumerate(images):
        out[i] = img.transpose(2, 0, 1)
    return out


@dataclass(frozen=True)
class ChunkJob:
    """One chunk of kept rows for a worker, with the settings it needs (picklable: it crosses into the worker)."""

    root: str
    size: int
    channels: int
    fit: str
    policy: AugmentPolicy
    copies: int
    rows: list[tuple[str, str, int, int, bool]]  # image_id, stored_path, offset, size, is_train


@dataclass
class ChunkResult:
    """One chunk of rows processed: originals, their augmented copies (train rows only), notes per row."""

    images: np.ndarray
    augmented: np.ndarray
    notes: list[list[str]]
    source_shapes: list[tuple[int, int, int]]


_AUGMENTERS: dict[tuple[AugmentPolicy, int], Augmenter] = {}


def augmenter_for(policy: AugmentPolicy, size: int) -> Augmenter:
    """One Augmenter per policy and size in each process (building a Compose costs more than a call)."""
    key = (policy, size)
    if key not in _AUGMENTERS:
        _AUGMENTERS[key] = Augmenter(policy, size)
    return _AUGMENTERS[key]


def augment_images(
    images: list[np.ndarray], image_ids: list[str], policy: AugmentPolicy, size: int, copies: int
) -> np.ndarray:
    """The augmentation path of `training_tensors`: `copies` seeded copies of each HxWxC image, N·K×C×H×W."""
    augmenter = augmenter_for(policy, size)
    out = []
    for image, image_id in zip(images, image_ids, strict=True):
        out.extend(augmenter.copies(image, image_id, copies))
    return to_chw(out, policy.channels, size)


def process_chunk(job: ChunkJob) -> ChunkResult:
    """Decode, prepare and augment one chunk of rows (runs in a worker); an unreadable stored image names itself."""
    prepared, notes, shapes, train_images, train_ids = [], [], [], [], []
    for image_id, stored_path, offset, nbytes, is_train in job.rows:
        try:
            pixels = decode_image(read_object(Path(job.root), stored_path, offset, nbytes)).pixels
        except Exception as exc:  # noqa: BLE001 - name the image whose stored copy is unusable
            raise RuntimeError(
                f"image {image_id} ({stored_path} @ {offset}) is kept in the clean set but cannot be read back: "
                f"{exc}; rematerialize raw_images and clean_images for this batch"
            ) from exc
        shapes.append((pixels.shape[1], pixels.shape[0], 1 if pixels.ndim == 2 else pixels.shape[2]))
        image, image_notes = prepare_image(pixels, job.size, job.channels, job.fit)
        prepared.append(image)
        notes.append(image_notes)
        if is_train:
            train_images.append(image)
            train_ids.append(image_id)
    augmented = augment_images(train_images, train_ids, job.policy, job.size, job.copies)
    return ChunkResult(to_chw(prepared, job.channels, job.size), augmented, notes, shapes)


WORKER_PRELOAD = ("synthaug.tensors.prepare", "albumentations")
"""What the forkserver imports once for every build worker: this module and the augmentation library."""
