"""What the cleaning set's generator writes: one unit of work (an original with its copies, or one single file) per
call, seeded from (seed, unit) so the files are the same whatever the number of worker processes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from cleaning_pixels import (
    blur,
    decode_cv2,
    decode_pil,
    encode,
    faint,
    materialize,
    near_transform,
    recolour,
    resave_png,
)


@dataclass
class TruthRow:
    """One line of truth.csv."""

    path: str
    truth: str
    category: str
    origin: str
    kind: str
    width: int
    height: int
    source: str = ""
    params: str = ""


@dataclass
class Unit:
    """One independent piece of generation: an original with its copies, or one single file."""

    kind: str  # original | blurry | tiny | flat | corrupt | colour
    index: int
    numbers: list[int]  # file numbers for every file the unit writes
    source: tuple | None = None
    copies: list[str] = field(default_factory=list)  # 'exact_bytes' | 'exact_resave' | 'near_<transform>'
    variant: str = ""


def _shape(pixels: np.ndarray) -> tuple[int, int]:
    return int(pixels.shape[1]), int(pixels.shape[0])


def _write(images: Path, number: int, ext: str, data: bytes) -> str:
    name = f"im_{number:06d}.{ext}"
    (images / name).write_bytes(data)
    return f"images/{name}"


def run_unit(unit: Unit, out: Path, seed: int) -> list[TruthRow]:
    """Write the files of one unit and return their truth rows."""
    codes = {"original": 1, "blurry": 2, "tiny": 3, "flat": 4, "corrupt": 5, "colour": 6}
    rng = np.random.default_rng([seed, codes[unit.kind], unit.index])
    images = out / "images"
    rows: list[TruthRow] = []
    numbers = iter(unit.numbers)

    if unit.kind == "original":
        assert unit.source is not None
        pixels, origin, kind = materialize(unit.source, rng)
        if kind == "grey28" or rng.random() < 0.5:
            fmt, quality = "png", 0
        else:
            fmt, quality = "jpg", int(rng.choice([90, 92, 95]))
        data = encode(pixels, fmt, quality)
        original_path = _write(images, next(numbers), fmt, data)
        decoded = decode_pil(data)
        w, h = _shape(decoded)
        rows.append(TruthRow(original_path, "", "original", origin, kind, w, h, params=f"format={fmt}"))
        for copy in unit.copies:
            number = next(numbers)
            if copy == "exact_resave":
                cv_pixels = decode_cv2(data)
                if cv_pixels is None or not np.array_equal(cv_pixels, decoded):
                    copy = "exact_bytes"  # decoders disagree on this JPEG: a byte copy is the only exact one
            if copy == "exact_bytes":
                path = _write(images, number, fmt, data)
                rows.append(TruthRow(path, "exact_duplicate", copy, origin, kind, w, h, original_path))
            elif copy == "exact_resave":
                path = _write(images, number, "png", resave_png(decoded))
                rows.append(TruthRow(path, "exact_duplicate", copy, origin, kind, w, h, original_path))
            else:
                transform = copy.removeprefix("near_")
                moved, params, q = near_transform(decoded, transform, rng)
                ext = "jpg" if q else "png"
                path = _write(images, number, ext, encode(moved, ext, q or 90))
                cw, ch = _shape(moved)
                rows.append(TruthRow(path, "near_duplicate", copy, origin, kind, cw, ch, original_path, params))
        return rows

    if unit.kind == "blurry":
        assert unit.source is not None
        pixels, origin, kind = materialize(unit.source, rng)
        blurred, category, params = blur(pixels, unit.variant or "blurry", rng)
        fmt = "png" if kind == "grey28" or rng.random() < 0.6 else "jpg"
        path = _write(images, next(numbers), fmt, encode(blurred, fmt, 90))
        w, h = _shape(blurred)
        return [TruthRow(path, "blurry", category, origin, kind, w, h, params=params)]

    if unit.kind == "colour":
        assert unit.source is not None
        pixels, origin, kind = materialize(unit.source, rng)
        fmt = "png"
        original_path = _write(images, next(numbers), fmt, encode(pixels, fmt))
        w, h = _shape(pixels)
        variant, params = recolour(pixels, rng)
        path = _write(images, next(numbers), fmt, encode(variant, fmt))
        return [
            TruthRow(original_path, "", "original", origin, kind, w, h, params="format=png"),
            TruthRow(path, "", "colour_variant", origin, kind, w, h, original_path, params),
        ]

    if unit.kind == "tiny":
        assert unit.source is not None
        pixels, origin, kind = materialize(unit.source, rng)
        small = int(rng.integers(4, 16))
        other = int(rng.integers(small, 41))
        tw, th = (small, other) if rng.random() < 0.5 else (other, small)
        tiny = cv2.resize(pixels, (tw, th), interpolation=cv2.INTER_AREA)
        fmt = "png" if rng.random() < 0.7 else "jpg"
        path = _write(images, next(numbers), fmt, encode(tiny, fmt, 90))
        return [TruthRow(path, "too_small", "tiny", origin, kind, tw, th, params=f"size={tw}x{th}")]

    if unit.kind == "flat" and unit.variant in ("faint_gradient", "vignette"):
        pixels, params = faint(unit.variant, rng)
        path = _write(images, next(numbers), "png", encode(pixels, "png"))
        w, h = _shape(pixels)
        return [TruthRow(path, "low_information", unit.variant, "", "flat", w, h, params=params)]

    if unit.kind == "flat":
        if rng.random() < 0.4:
            shape: tuple[int, ...] = (28, 28)
        else:
            shape = (int(rng.integers(64, 257)), int(rng.integers(64, 257)), 3)
        value = rng.integers(0, 256, shape[2] if len(shape) == 3 else 1)
        flat = np.broadcast_to(value.astype(np.float32), shape).copy()
        category, params = "flat", f"value={'/'.join(str(int(v)) for v in value)}"
        if rng.random() < 0.5:
            sigma = float(rng.uniform(0.3, 1.5))
            flat += rng.normal(0, sigma, shape)
            category, params = "flat_noise", params + f",sigma={sigma:.2f}"
        pixels = np.clip(np.round(flat), 0, 255).astype(np.uint8)
        path = _write(images, next(numbers), "png", encode(pixels, "png"))
        w, h = _shape(pixels)
        return [TruthRow(path, "low_information", category, "", "flat", w, h, params=params)]

    # corrupt
    number = next(numbers)
    if unit.variant == "zero_bytes":
        path = _write(images, number, "png" if rng.random() < 0.5 else "jpg", b"")
        return [TruthRow(path, "corrupt", "corrupt_zero_bytes", "", "none", 0, 0)]
    if unit.variant == "text":
        text = f"not an image {unit.index}\n" + "lorem ipsum dolor sit amet\n" * int(rng.integers(1, 50))
        path = _write(images, number, "png", text.encode())
        return [TruthRow(path, "corrupt", "corrupt_text", "", "none", 0, 0)]
    assert unit.source is not None
    pixels, origin, kind = materialize(unit.source, rng)
    fmt = "png" if unit.variant == "truncated_png" else "jpg"
    data = encode(pixels, fmt, 90)
    cut = float(rng.uniform(0.2, 0.8))
    path = _write(images, number, fmt, data[: int(len(data) * cut)])
    w, h = _shape(pixels)
    return [TruthRow(path, "corrupt", f"corrupt_{unit.variant}", origin, kind, w, h, params=f"kept={cut:.2f}")]


def run_units(args: tuple[list[Unit], str, int]) -> list[TruthRow]:
    """Pool job: the rows of every unit in `args` (units, output folder, seed), in order."""
    units, out, seed = args
    rows: list[TruthRow] = []
    for unit in units:
        rows += run_unit(unit, Path(out), seed)
    return rows
