"""The low-data benchmark's runs on disk: what a run landed, whether its pipeline finished, and the synthetic sets
of several runs mixed into one set for arm (c) (`--mix-with`: whether samples of independently trained generators,
another `gan_checkpoint` seed or family, add the variety that one generator's samples lack)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from low_data_regimes import DEFAULT_VAL_SHARE

Images = tuple[np.ndarray, np.ndarray]


def mixed_sets(sets: Sequence[Images], num_classes: int, union: bool = False, seed: int = 0) -> Images:
    """One set from several (uint8 images, labels): per class as many images as the first set holds, in equal shares
    from each set (a set short of its share leaves the rest to the others), each image at most once; with `union`,
    every image of every set. Classes are in order, the images of each class in a seeded random order."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for label in range(num_classes):
        pools = [images[labels == label] for images, labels in sets]
        sizes = [len(pool) for pool in pools]
        take = sizes if union else _shares(sizes[0], sizes)
        for pool, count in zip(pools, take, strict=True):
            xs.append(pool[rng.permutation(len(pool))[:count]])
            ys.append(np.full(count, label, np.int64))
    return np.concatenate(xs), np.concatenate(ys)


def _shares(total: int, sizes: Sequence[int]) -> list[int]:
    """`total` split as evenly as the pools allow: equal shares, then what a short pool cannot give, one at a time,
    from the pools that still have images (the total shrinks only when every pool is spent)."""
    take = [0] * len(sizes)
    left = min(total, sum(sizes))
    while left:
        open_pools = [i for i, size in enumerate(sizes) if take[i] < size]
        for i in open_pools[:left]:
            take[i] += 1
            left -= 1
    return take


def other_sets(workdirs: Sequence[str], regime: str, root: Path) -> list[Images]:
    """The published synthetic sets of `regime` in other benchmark workdirs, each checked to come from the same
    landing (its `landed.json`) and the same classes as the run in `root`."""
    from synthaug.core.layout import DataLayout
    from synthaug.synthetic.readback import read_synthetic
    from synthaug.tensors.norm_stats import load_stats

    others = [Path(workdir) / regime for workdir in workdirs]
    landing = _landing(root)
    for other in others:
        if landing is None or _landing(other) != landing:
            raise SystemExit(
                f"low_data: {other} is not a run of {regime} on the same landing as {root} (their landed.json "
                "differ or one is missing); run the regime there first with the same --val-share"
            )
    classes = load_stats(DataLayout(root / "data")).classes
    out = []
    for other in others:
        layout = DataLayout(other / "data")
        if load_stats(layout).classes != classes:
            raise SystemExit(f"low_data: {other} has other classes than {root}; mix only runs of the same landing")
        synthetic = read_synthetic(layout)
        out.append((synthetic.images, synthetic.labels))
    return out


def _landing(root: Path) -> dict | None:
    """What `root`'s run landed (`landed.json`: the val share and images per class), or None without a record."""
    record = root / "landed.json"
    return json.loads(record.read_text()) if record.is_file() else None


def check_val_share(root: Path, val_share: float) -> None:
    """Stop when `root`'s pipeline run was landed at another `--val-share` (runs without a record used 0.2): its
    splits, generator and synthetic set belong to that share."""
    record = _landing(root)
    landed = record["val_share"] if record is not None else DEFAULT_VAL_SHARE
    if abs(landed - val_share) > 1e-9:
        raise SystemExit(
            f"low_data: {root} was landed with --val-share {landed:g}, not {val_share:g}; pass --val-share {landed:g} "
            "to reuse it, or another --workdir for a new run"
        )


def has_synthetic_set(root: Path) -> bool:
    """True when `root` holds a finished pipeline run of one size (its synthetic set and statistics exist)."""
    from synthaug.core.layout import DataLayout
    from synthaug.synthetic.readback import read_synthetic
    from synthaug.tensors.norm_stats import load_stats

    layout = DataLayout(root / "data")
    try:
        load_stats(layout)
        read_synthetic(layout)
    except (FileNotFoundError, ValueError):
        return False
    return True
