"""Labeled test set for the image-cleaning stage: originals plus known duplicates, blurry, tiny, flat and corrupt files.

Everything goes into one flat folder, `<out>/images/`, with neutral names (`im_<number>.<ext>`, numbers
shuffled so that name order says nothing about the category), and the ground truth into
`<out>/truth.csv`:

* `path` - relative to `<out>` (`images/im_001234.png`);
* `truth` - empty for an untouched original, else what a cleaner should say: `exact_duplicate`,
  `near_duplicate`, `blurry`, `too_small`, `low_information` or `corrupt`;
* `source` - for a duplicate, the `path` of its original (which is in the set); empty otherwise;
* `category` - the exact recipe (`original`, `exact_bytes`, `exact_resave`, `near_resize`, `near_jpeg`,
  `near_brightness`, `near_noise`, `near_crop`, `blurry`, `tiny`, `flat`, `flat_noise`, `corrupt_truncated_png`,
  `corrupt_truncated_jpeg`, `corrupt_zero_bytes`, `corrupt_text`), `params` its parameters;
* `origin` - where the pixels come from (`fmnist/<train index>`, `photo/<skimage name>@x,y,w,h`,
  `procedural/<seed>`), also for blurry/tiny/corrupt files whose origin is *not* in the set;
* `kind` (`grey28`, `photo`, `procedural`, `flat`, `none`), `width`, `height`.

Sources of pixels:

* `grey28` - Fashion-MNIST train images (Debian's `dataset-fashion-mnist`), 28x28 grey, as is; rows with
  identical pixels are dropped, and so are near-blank ones (grey std < 12), so each original is distinct;
* `photo` - crops (at least 128 px a side) of the colour and grey sample photos shipped inside scikit-image
  (`skimage.data`), shrunk (never enlarged) so the longer side is 128-256 px; crops of the same photo overlap
  by at most 15% of the smaller crop; crops with grey std < 12, with fewer than 8% of pixels on an edge (Sobel
  step >= 8 grey levels) or with more than 40% near-black pixels are dropped (the soft-focus `cell` and `clock`
  photos are not used), and grey photos are tinted. That leaves only ~65 crops; once they are used up,
  procedural renderings take their place;
* `procedural` - RGB renderings at 128-256 px: a two-colour gradient, low-frequency colour blotches, a
  fine-grain texture, 6-20 anti-aliased shapes, 1-3 random words and sensor-like noise, each from its own seed.

Derived files and how they are labeled:

* exact duplicates of an original (in the set): a byte copy, or the decoded pixels re-saved as PNG with a text
  chunk (different bytes, identical pixels);
* near duplicates of an original (in the set), one transform each: resize by 0.5-0.9 (never below 20 px a
  side, so a 28 px image stays above the tiny limit), JPEG re-encode at quality 95/75/50/30, brightness/contrast
  (gain 0.8-1.2, offset +-8..25), Gaussian noise sigma 3-8, crop of 3-8% of each axis;
* blurry: Gaussian blur with sigma = 2.5-4.5% of the smaller side (at least 1.2 px) of an origin that is
  *not* otherwise in the set, so the file is only blurry, not also a duplicate;
* too_small: an origin (not in the set) resized to a smaller side of 4-15 px;
* low_information: a constant image (grey or colour, 28-256 px), half of them plus Gaussian noise sigma
  0.3-1.5; note that flat images of the same size and colour are also pixel-identical to each other;
* corrupt: a PNG or JPEG cut at 20-80% of its bytes, a zero-byte `.png`/`.jpg`, or text named `.png`.

`--hard` adds what a real collection holds and the default set does not (`DatasetSpec.hard`):

* near duplicates, on top of the five transforms above: `near_crop10` (5-10% cut off each axis), `near_rotate`
  (2-5 degrees, then the largest centred window without new corners, so also a 5-10% zoom), `near_rerender` (the
  same drawing with a margin of 3-8% of the side in its border colour, rendered at 0.5-1.0 of the size), and
  `near_combined` (rotation 1-3 degrees + crop 2-5% + resize 0.6-0.95 + brightness + JPEG 50-90);
* blurry, a third each: the heavy blur above, `blurry_mild` (Gaussian sigma 0.6-1.5 px at the native size) and
  `blurry_motion` (a 3-9 px line kernel at a random angle, native size);
* low_information, on top of flat images: `faint_gradient` (a linear ramp of 6-40 grey levels in one colour) and
  `vignette` (a radial falloff of 6-40 levels), each with noise sigma 0-1.5;
* `colour_variant` hard negatives (truth empty, `source` = the original it was made from, which is in the set):
  the original with its hue turned 60-180 degrees (colour sources) or a grey original tinted with a saturated
  colour; a cleaner must keep both. 5% of the files.

Every originals' copies are written by the same unit of work, seeded from (seed, unit), so the output is
identical for a given seed and counts whatever the number of worker processes.

Usage::

    .venv/bin/python benchmarks/cleaning_dataset.py /tmp/clean-set --n 20000 --seed 0 --workers 2
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from cleaning_pixels import distinct_fmnist_indices, photo_crops
from cleaning_units import TruthRow, Unit, run_units

GENERATOR_VERSION = 3
TRUTH_COLUMNS = ["path", "truth", "source", "category", "params", "origin", "kind", "width", "height"]
NEAR_TRANSFORMS = ("resize", "jpeg", "brightness", "noise", "crop")
HARD_TRANSFORMS = ("crop10", "rotate", "rerender", "combined")

# --------------------------------------------------------------------------------------------------
# Spec
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetSpec:
    """How many files of each category, and the mix of pixel sources.

    `n_exact` and `n_near` are copies (each of a randomly chosen original, so an original may get several);
    `grey_fraction` of the sources are Fashion-MNIST, up to `photo_fraction` are photo crops (as many as the
    distinct crops allow), the rest procedural renderings.
    """

    n_originals: int
    n_exact: int
    n_near: int
    n_blurry: int
    n_tiny: int
    n_flat: int
    n_corrupt: int
    seed: int = 0
    grey_fraction: float = 0.5
    photo_fraction: float = 0.1
    hard: bool = False
    n_colour: int = 0

    @property
    def total(self) -> int:
        """Number of files the set will hold."""
        return (
            self.n_originals
            + self.n_exact
            + self.n_near
            + self.n_blurry
            + self.n_tiny
            + self.n_flat
            + self.n_corrupt
            + 2 * (self.n_colour // 2)
        )

    @classmethod
    def for_total(cls, n: int, seed: int = 0, **overrides: float) -> DatasetSpec:
        """Default composition for `n` files: 70% originals, 4% exact copies, 12% near copies, 6% blurry,
        2% tiny, 3% flat, 3% corrupt (originals absorb rounding); with `hard=True` also 5% colour variants.
        `overrides` replace any field."""
        fractions = {"n_exact": 0.04, "n_near": 0.12, "n_blurry": 0.06, "n_tiny": 0.02, "n_flat": 0.03}
        if overrides.get("hard"):
            fractions["n_colour"] = 0.05
        counts = {k: int(round(n * f)) for k, f in fractions.items()}
        counts["n_colour"] = 2 * (counts.get("n_colour", 0) // 2)  # each variant comes with its own original
        counts["n_corrupt"] = int(round(n * 0.03))
        counts["n_originals"] = max(1, n - sum(counts.values()))
        values: dict[str, float] = {**counts, "seed": seed}
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# Planning and the public entry point
# --------------------------------------------------------------------------------------------------


class _SourcePlanner:
    """Hands out distinct sources: Fashion-MNIST rows, photo crops while they last, procedural seeds."""

    def __init__(self, spec: DatasetSpec, rng: np.random.Generator) -> None:
        self.rng = rng
        self.spec = spec
        self.fmnist = list(rng.permutation(distinct_fmnist_indices()))
        self.crops = photo_crops(rng) if spec.photo_fraction > 0 else []
        order = rng.permutation(len(self.crops))
        self.crops = [self.crops[i] for i in order]
        self.proc_counter = 0

    def _size(self) -> tuple[int, int]:
        side = int(self.rng.integers(128, 257))
        aspect = self.rng.uniform(0.75, 1.33)
        return int(np.clip(side * np.sqrt(aspect), 128, 256)), int(np.clip(side / np.sqrt(aspect), 128, 256))

    def next(self) -> tuple:
        u = self.rng.random()
        if u < self.spec.grey_fraction and self.fmnist:
            return ("fmnist", int(self.fmnist.pop()))
        if u < self.spec.grey_fraction + self.spec.photo_fraction and self.crops:
            name, x, y, w, h = self.crops.pop()
            side = int(self.rng.integers(128, 257))
            scale = min(1.0, side / max(w, h))
            out_w, out_h = round(w * scale), round(h * scale)
            return ("photo", name, x, y, w, h, out_w, out_h)
        self.proc_counter += 1
        out_w, out_h = self._size()
        return ("procedural", self.spec.seed * 1_000_003 + self.proc_counter, out_w, out_h)


def plan_units(spec: DatasetSpec) -> list[Unit]:
    """Decide every file: sources, copies per original, corrupt variants and (shuffled) file numbers."""
    rng = np.random.default_rng([spec.seed, 0])
    planner = _SourcePlanner(spec, rng)
    numbers = iter(rng.permutation(spec.total).tolist())
    n_orig = spec.n_originals
    copy_owner = rng.integers(0, n_orig, spec.n_exact + spec.n_near)
    copy_kinds = [("exact_bytes", "exact_resave")[i % 2] for i in range(spec.n_exact)]
    transforms = NEAR_TRANSFORMS + HARD_TRANSFORMS if spec.hard else NEAR_TRANSFORMS
    copy_kinds += [f"near_{transforms[i % len(transforms)]}" for i in range(spec.n_near)]
    copies: list[list[str]] = [[] for _ in range(n_orig)]
    for owner, kind in zip(copy_owner, copy_kinds, strict=True):
        copies[int(owner)].append(kind)
    units = [
        Unit("original", i, [next(numbers) for _ in range(1 + len(copies[i]))], planner.next(), copies[i])
        for i in range(n_orig)
    ]
    blurs = ("blurry", "blurry_mild", "blurry_motion") if spec.hard else ("blurry",)
    units += [
        Unit("blurry", i, [next(numbers)], planner.next(), variant=blurs[i % len(blurs)]) for i in range(spec.n_blurry)
    ]
    units += [Unit("tiny", i, [next(numbers)], planner.next()) for i in range(spec.n_tiny)]
    flats = ("", "faint_gradient", "", "vignette") if spec.hard else ("",)
    units += [Unit("flat", i, [next(numbers)], variant=flats[i % len(flats)]) for i in range(spec.n_flat)]
    units += [Unit("colour", i, [next(numbers), next(numbers)], planner.next()) for i in range(spec.n_colour // 2)]
    variants = ("truncated_png", "truncated_jpeg", "truncated_png", "truncated_jpeg", "zero_bytes", "text")
    for i in range(spec.n_corrupt):
        variant = variants[i % len(variants)]
        source = planner.next() if variant.startswith("truncated") else None
        units.append(Unit("corrupt", i, [next(numbers)], source, variant=variant))
    return units


def _chunks(units: list[Unit], size: int) -> Iterator[list[Unit]]:
    for start in range(0, len(units), size):
        yield units[start : start + size]


def generate(out: Path, spec: DatasetSpec, workers: int = 1, progress: bool = True) -> Path:
    """Build the labeled set in `out` (replacing what is there) and return the path of truth.csv."""
    t0 = time.perf_counter()
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    (out / "images").mkdir(parents=True)
    units = plan_units(spec)
    jobs = [(chunk, str(out), spec.seed) for chunk in _chunks(units, 200)]
    rows: list[TruthRow] = []
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            for part in pool.map(run_units, jobs):
                rows += part
                if progress:
                    print(f"  generated {len(rows)}/{spec.total} files", file=sys.stderr, end="\r", flush=True)
    else:
        for job in jobs:
            rows += run_units(job)
            if progress:
                print(f"  generated {len(rows)}/{spec.total} files", file=sys.stderr, end="\r", flush=True)
    if progress:
        print(file=sys.stderr)
    rows.sort(key=lambda r: r.path)
    truth_path = out / "truth.csv"
    with truth_path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=TRUTH_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: getattr(row, k) for k in TRUTH_COLUMNS})
    manifest = {"generator_version": GENERATOR_VERSION, "spec": asdict(spec), "files": len(rows)}
    manifest["seconds"] = round(time.perf_counter() - t0, 1)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return truth_path


def matches(out: Path, spec: DatasetSpec) -> bool:
    """True when `out` already holds a complete set generated from `spec` by this generator version."""
    try:
        manifest = json.loads((Path(out) / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return (
        manifest.get("generator_version") == GENERATOR_VERSION
        and manifest.get("spec") == asdict(spec)
        and (Path(out) / "truth.csv").is_file()
        and sum(1 for _ in (Path(out) / "images").iterdir()) == spec.total
    )


def ensure(out: Path, spec: DatasetSpec, workers: int = 1) -> Path:
    """Reuse the set in `out` when it matches `spec`, else generate it; return truth.csv's path."""
    if matches(out, spec):
        return Path(out) / "truth.csv"
    return generate(out, spec, workers)


def main(argv: list[str] | None = None) -> int:
    """CLI: `cleaning_dataset.py OUT --n N [--seed S] [--workers W] [--n-<category> K ...]`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="output folder (replaced)")
    parser.add_argument("--n", type=int, default=2000, help="total files for the default composition")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    for name in ("originals", "exact", "near", "blurry", "tiny", "flat", "corrupt"):
        parser.add_argument(f"--n-{name}", type=int, default=None, help=f"override the number of {name} files")
    parser.add_argument("--grey-fraction", type=float, default=0.5)
    parser.add_argument("--photo-fraction", type=float, default=0.1)
    parser.add_argument("--hard", action="store_true", help="add the hard categories (see the module docstring)")
    args = parser.parse_args(argv)
    overrides: dict[str, float] = {"grey_fraction": args.grey_fraction, "photo_fraction": args.photo_fraction}
    if args.hard:
        overrides["hard"] = True
    for name in ("originals", "exact", "near", "blurry", "tiny", "flat", "corrupt"):
        value = getattr(args, f"n_{name}")
        if value is not None:
            overrides[f"n_{name}"] = value
    spec = DatasetSpec.for_total(args.n, args.seed, **overrides)
    truth = generate(args.out, spec, args.workers)
    counts: dict[str, int] = {}
    with truth.open() as fh:
        for row in csv.DictReader(fh):
            counts[row["category"]] = counts.get(row["category"], 0) + 1
    print(f"{spec.total} files in {args.out}/images, truth in {truth}")
    for category, count in sorted(counts.items()):
        print(f"  {category:24s} {count:6d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
