"""Per-image features for cleaning: quality scores and a perceptual hash, computed in parallel from decoded pixels."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

import cv2
import imagehash
import numpy as np
import scipy.fftpack
from PIL import Image

from synthaug.clean.blur import detail_scores
from synthaug.clean.colour import colour_signature
from synthaug.clean.quality import WORK_SIZE, pixel_scores, thumbnail_vector, to_grey, working_grey
from synthaug.core.errors import InvalidInput
from synthaug.core.hashing import pixel_hash
from synthaug.core.packs import read_object
from synthaug.core.pools import bounded_map
from synthaug.core.progress import Progress, ProgressFn
from synthaug.ingest.imageio import ImageDecodeError, decode_image, read_image

HASH_ALGORITHMS: dict[str, Callable[[Image.Image], imagehash.ImageHash]] = {
    "phash": imagehash.phash,
    "dhash": imagehash.dhash,
    "average_hash": imagehash.average_hash,
    "whash": imagehash.whash,
}
PARALLEL_MIN_IMAGES = 256


def fast_phash(grey: np.ndarray) -> int:
    """imagehash's `phash` (hash_size 8), bit for bit, without its per-call overhead.

    Same steps: Pillow LANCZOS resize to 32×32, 2-D DCT-II (scipy.fftpack), the 8×8 lowest
    frequencies compared with their median, bits read row by row as imagehash's hex string does.
    """
    small = np.asarray(Image.fromarray(grey).resize((32, 32), Image.Resampling.LANCZOS))
    low = scipy.fftpack.dct(scipy.fftpack.dct(small, axis=0), axis=1)[:8, :8].ravel()
    middle = np.partition(low, (31, 32))
    median = (middle[31] + middle[32]) / 2
    return int.from_bytes(np.packbits(low > median).tobytes(), "big")


def perceptual_hash(pixels: np.ndarray, algorithm: str = "phash") -> int:
    """64-bit perceptual hash (imagehash's algorithms) of decoded pixels, as an unsigned int."""
    try:
        fn = HASH_ALGORITHMS[algorithm]
    except KeyError:
        raise InvalidInput(f"unknown hash algorithm {algorithm!r}; choose one of {sorted(HASH_ALGORITHMS)}") from None
    if algorithm == "phash" and pixels.ndim == 2:
        return fast_phash(pixels)
    return int(str(fn(Image.fromarray(pixels))), 16)


Source = str | tuple[str, int, int]


def image_features(source: Source, algorithm: str = "phash", work_size: int = WORK_SIZE) -> dict | None:
    """Decode one image (a file path, or (pack path, offset, size)) and return its scores (all but `detail`, which
    `compute_features` adds for the whole batch), hash, grey thumbnail and colour signature, or None when it cannot
    be decoded."""
    try:
        if isinstance(source, tuple):
            pack, offset, size = source
            pixels = decode_image(read_object(Path("/"), pack, offset, size)).pixels
        else:
            pixels = read_image(source)
    except (OSError, ImageDecodeError):
        return None
    grey = to_grey(pixels)
    work = working_grey(grey, work_size)
    thumb = thumbnail_vector(grey, work)
    return {
        **pixel_scores(grey),
        "phash": perceptual_hash(grey, algorithm),
        "width": int(pixels.shape[1]),
        "height": int(pixels.shape[0]),
        "pixel_hash": pixel_hash(pixels),
        "thumb": thumb.tobytes(),
        "colour": colour_signature(pixels).tobytes(),
    }


def _single_threaded() -> None:
    """Pool worker set-up: one OpenCV thread per process, since the pool already uses every core."""
    cv2.setNumThreads(1)


def _features_star(args: tuple[Source, str, int]) -> dict | None:
    return image_features(*args)


def compute_features(
    sources: Iterable[Source],
    algorithm: str = "phash",
    work_size: int = WORK_SIZE,
    workers: int = 0,
    progress: ProgressFn | None = None,
) -> list[dict | None]:
    """Features of every source, in order, spread over `workers` processes (0: every core); `detail` is computed
    here for all thumbnails at once.

    A dead worker raises `BrokenProcessPool` rather than hanging; `progress` is called every few seconds.
    """
    jobs = [(p, algorithm, work_size) for p in sources]
    reporter = Progress(progress, len(jobs))
    workers = workers or os.cpu_count() or 1
    if len(jobs) < PARALLEL_MIN_IMAGES:
        workers = 1
    results: list[dict | None] = []
    pool = bounded_map(
        _features_star, jobs, workers, preload=["synthaug.clean.features"], initializer=_single_threaded, chunksize=64
    )
    for result in pool:
        results.append(result)
        reporter.update(len(results))
    decoded = [r for r in results if r is not None]
    if decoded:
        thumbs = np.frombuffer(b"".join(r["thumb"] for r in decoded), dtype=np.uint8).reshape(len(decoded), -1)
        for r, detail in zip(decoded, detail_scores(thumbs).tolist(), strict=True):
            r["detail"] = detail
    return results
