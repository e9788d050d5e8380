"""Labeled near-duplicate set from images the project did not make: an icon theme installed on the machine.

An icon theme ships the same drawing rendered at several sizes (`<theme>/<W>x<H>/<context>/<name>.png`), each size
with its own margins and hinting. Every icon name found at two or more of the chosen sizes is a duplicate group:
the largest rendering is the original and every smaller one a `near_duplicate` of it (category `icon_rendering`);
names found at one size only are untouched originals. A theme also ships aliases (two names, identical pixels):
names that share an identical rendering at any size form one group, and a copy whose pixels equal its original's
is an `exact_duplicate` (category `icon_alias`). Icons of different names are otherwise distinct even where they
look alike (arrows pointing left and right, the same glyph with or without a badge): the hard negatives.

Files are copied as they are (PNG with alpha; ingest composites them on white) into `<out>/images/` with shuffled
neutral names, and `truth.csv` has the columns of `benchmarks/cleaning_dataset.py`.

Usage::

    .venv/bin/python benchmarks/cleaning_external.py /tmp/icons --theme /usr/share/icons/Adwaita
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
from cleaning_dataset import TRUTH_COLUMNS
from PIL import Image

DEFAULT_THEME = Path("/usr/share/icons/Adwaita")
DEFAULT_SIZES = (32, 48, 64, 96, 256, 512)
EXTERNAL_VERSION = 2


def icon_groups(theme: Path, sizes: tuple[int, ...] = DEFAULT_SIZES) -> dict[str, list[tuple[int, Path]]]:
    """Icon name (context/name) -> [(size, path)] over the chosen square sizes, largest first."""
    groups: dict[str, list[tuple[int, Path]]] = {}
    for size in sizes:
        folder = theme / f"{size}x{size}"
        for path in sorted(folder.glob("*/*.png")):
            groups.setdefault(f"{path.parent.name}/{path.name}", []).append((size, path))
    return {name: sorted(files, reverse=True) for name, files in sorted(groups.items())}


def _pixels_digest(path: Path) -> str:
    """Digest of the decoded RGBA pixels and size (aliases are identical once decoded, not always as bytes)."""
    with Image.open(path) as img:
        rgba = img.convert("RGBA")
        return hashlib.sha256(repr(rgba.size).encode() + rgba.tobytes()).hexdigest()


def merged_groups(groups: dict[str, list[tuple[int, Path]]]) -> list[list[tuple[int, Path, str]]]:
    """Groups of renderings (size, path, pixel digest), largest first: names that share an identical rendering
    at any size are one group."""
    parent = {name: name for name in groups}

    def root(name: str) -> str:
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    digests = {name: [(size, path, _pixels_digest(path)) for size, path in files] for name, files in groups.items()}
    first_owner: dict[str, str] = {}
    for name, files in digests.items():
        for _, _, digest in files:
            other = first_owner.setdefault(digest, name)
            parent[root(name)] = root(other)
    merged: dict[str, list[tuple[int, Path, str]]] = {}
    for name, files in digests.items():
        merged.setdefault(root(name), []).extend(files)
    return [sorted(files, key=lambda f: (-f[0], str(f[1]))) for _, files in sorted(merged.items())]


def build(out: Path, theme: Path = DEFAULT_THEME, sizes: tuple[int, ...] = DEFAULT_SIZES, seed: int = 0) -> Path:
    """Copy every icon of `theme` at `sizes` into `out/images` and write `out/truth.csv`; return its path."""
    out = Path(out)
    spec = {"version": EXTERNAL_VERSION, "theme": str(theme), "sizes": list(sizes), "seed": seed}
    marker = out / "manifest.json"
    if marker.is_file() and json.loads(marker.read_text()) == spec and (out / "truth.csv").is_file():
        return out / "truth.csv"
    if out.exists():
        shutil.rmtree(out)
    (out / "images").mkdir(parents=True)
    groups = merged_groups(icon_groups(theme, sizes))
    total = sum(len(files) for files in groups)
    numbers = iter(np.random.default_rng(seed).permutation(total).tolist())
    rows = []
    for files in groups:
        original, original_digest = "", ""
        for size, path, digest in files:
            rel = f"images/im_{next(numbers):06d}.png"
            shutil.copyfile(path, out / rel)
            with Image.open(path) as img:
                w, h = img.size
            origin = f"{theme.name}/{path.relative_to(theme)}"
            if not original:
                original, original_digest = rel, digest
                rows.append([rel, "", "", "original", f"size={size}", origin, "icon", w, h])
            elif digest == original_digest:
                rows.append([rel, "exact_duplicate", original, "icon_alias", f"size={size}", origin, "icon", w, h])
            else:
                rows.append([rel, "near_duplicate", original, "icon_rendering", f"size={size}", origin, "icon", w, h])
    rows.sort()
    with (out / "truth.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(TRUTH_COLUMNS)
        writer.writerows(rows)
    marker.write_text(json.dumps(spec) + "\n")
    return out / "truth.csv"


def main(argv: list[str] | None = None) -> int:
    """CLI: build the icon set and print its counts."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--theme", type=Path, default=DEFAULT_THEME)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    truth = build(args.out, args.theme, seed=args.seed)
    with truth.open() as fh:
        rows = list(csv.DictReader(fh))
    copies = sum(r["truth"] == "near_duplicate" for r in rows)
    print(f"{len(rows)} icons in {args.out}/images ({copies} smaller renderings of another file), truth in {truth}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
