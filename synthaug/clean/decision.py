"""The cleaning decision: for every raw image, kept or removed, and why.

Rules run in order and the first that fires is the reason: `corrupt`, `too_small`,
`low_information` (never had detail: low std, low entropy, or little structure beyond a smooth ramp or
vignette), `blurry` (had detail, lost it: native-resolution sharpness below an absolute threshold or below a
percentile of the batch), then `exact_duplicate` / `near_duplicate` across this
batch and every earlier-arrived batch (see `synthaug.clean.dedup` for the keep rule). A batch's result
depends only on itself and earlier batches, never on the order partitions were materialized in.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from synthaug.clean.dedup import CropSearch, LinkSearch, find_duplicates
from synthaug.clean.features import HASH_ALGORITHMS, Source, compute_features
from synthaug.clean.quality import WORK_SIZE
from synthaug.clean.ratio import RatioSearch
from synthaug.core.progress import ProgressFn
from synthaug.core.ranges import check_fields, one_of, ranged

REASONS = ("corrupt", "too_small", "low_information", "blurry", "exact_duplicate", "near_duplicate")
SCORE_COLUMNS = ["min_side", "std", "entropy", "detail", "sharpness"]


@dataclass(frozen=True)
class CleanRules:
    """Thresholds of every rule. Defaults were chosen by measurement (benchmarks/cleaning_benchmark.py)."""

    min_side: int = ranged(16, low=1)
    min_std: float = ranged(2.0, low=0)
    min_entropy: float = ranged(1.0, low=0)
    min_detail: float = ranged(2.0, low=0)
    blur_mode: str = one_of("absolute", ("absolute", "percentile", "off"))
    blur_threshold: float = ranged(0.45, low=0)
    blur_percentile: float = ranged(5.0, 0, 100, high_open=True)
    hash_algorithm: str = one_of("phash", sorted(HASH_ALGORITHMS))
    hash_threshold: int = ranged(4, 0, 64)
    verify_min_correlation: float = ranged(0.98, -1, 1, note="0 or less: off")
    crop_hash_threshold: int = ranged(16, 0, 64, note="0: crop links off")
    crop_max_share: float = ranged(0.15, 0, 1, low_open=True, high_open=True)
    crop_min_correlation: float = ranged(0.975, -1, 1)
    layout_neighbours: int = ranged(8, low=0, note="0: layout candidates off")
    layout_min_cosine: float = ranged(0.8, -1, 1)
    align_min_correlation: float = ranged(0.93, -1, 1)
    align_small_min_correlation: float = ranged(0.995, -1, 1)
    colour_max_distance: float = ranged(0.4, low=0)
    ratio_neighbours: int = ranged(128, low=0, note="0: ratio-test links off")
    ratio_min_correlation: float = ranged(0.97, -1, 1)
    ratio_max: float = ranged(0.3, 0, 1)
    work_size: int = ranged(WORK_SIZE, low=8)

    def __post_init__(self) -> None:
        check_fields(self)

    def crop_search(self) -> CropSearch | None:
        """Settings of the crop links, or None when they are switched off (`crop_hash_threshold` 0)."""
        if self.crop_hash_threshold == 0:
            return None
        return CropSearch(self.crop_hash_threshold, self.crop_max_share, self.crop_min_correlation)

    def link_search(self) -> LinkSearch:
        """Settings of the layout candidates, the aligned confirmation, the colour check and the ratio test."""
        return LinkSearch(
            self.layout_neighbours,
            self.layout_min_cosine,
            self.align_min_correlation,
            self.colour_max_distance,
            self.align_small_min_correlation,
            RatioSearch(self.ratio_neighbours, self.ratio_min_correlation, self.ratio_max),
        )

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


def features_frame(
    image_ids: list[str],
    paths: list[Source | None],
    rules: CleanRules,
    workers: int = 0,
    progress: ProgressFn | None = None,
) -> pd.DataFrame:
    """Features of each image (None source or undecodable → `ok` False), in the given order."""
    todo = [i for i, p in enumerate(paths) if p]
    computed = compute_features([paths[i] for i in todo], rules.hash_algorithm, rules.work_size, workers, progress)
    records: list[dict] = [{} for _ in paths]
    for i, feats in zip(todo, computed, strict=True):
        records[i] = feats or {}
    columns = [*SCORE_COLUMNS, "width", "height", "pixel_hash", "thumb", "colour"]
    frame = pd.DataFrame({col: [r.get(col) for r in records] for col in columns}, index=range(len(paths)))
    # 64-bit hashes must never pass through float64 (pandas' choice for a column with gaps): it drops bits
    frame["phash"] = pd.Series([None if "phash" not in r else np.uint64(r["phash"]) for r in records], dtype=object)
    frame.insert(0, "image_id", image_ids)
    frame["ok"] = frame["pixel_hash"].notna()
    return frame


def quality_verdicts(features: pd.DataFrame, rules: CleanRules) -> tuple[pd.Series, float | None]:
    """Reason per image from the single-image rules (None when it passes them) and the blur cutoff used."""
    reason = pd.Series([None] * len(features), index=features.index, dtype=object)
    ok = features["ok"].to_numpy(dtype=bool)
    reason[~ok] = "corrupt"
    min_side = features["min_side"].to_numpy(dtype=np.float64)
    std = features["std"].to_numpy(dtype=np.float64)
    entropy = features["entropy"].to_numpy(dtype=np.float64)
    sharp = features["sharpness"].to_numpy(dtype=np.float64)
    detail = features["detail"].to_numpy(dtype=np.float64)
    open_ = reason.isna().to_numpy().copy()
    small = open_ & (min_side < rules.min_side)
    reason[small] = "too_small"
    open_ &= ~small
    flat = open_ & ((std < rules.min_std) | (entropy < rules.min_entropy) | (detail < rules.min_detail))
    reason[flat] = "low_information"
    open_ &= ~flat
    cutoff = None
    if rules.blur_mode == "absolute":
        cutoff = rules.blur_threshold
    elif rules.blur_mode == "percentile" and open_.any():
        cutoff = float(np.percentile(sharp[open_], rules.blur_percentile))
    if cutoff is not None:
        reason[open_ & (sharp < cutoff)] = "blurry"
    return reason, cutoff


# The decisions multiply many small matrices (75 warps of a 16×16 view against a few candidates at a time): OpenBLAS's
# threads only add synchronisation there, and on a busy machine they made `decide` 2-3× slower (20k hard files: 12.5-20
# s against 6.4-6.7 s with one thread, identical decisions; quiet, the same time either way).
@threadpool_limits.wrap(limits=1, user_api="blas")
def decide(batches: list[pd.DataFrame], rules: CleanRules, workers: int = 1) -> pd.DataFrame:
    """Decide for the LAST of `batches` (earlier ones in arrival order give the cross-batch context).

    Returns one row per image of the last batch: image_id, status, reason, duplicate_of, duplicate_match
    (`exact` or proposer+confirmer, see `synthaug.clean.dedup.MATCHES`), hash_distance, cluster_size,
    cluster_diameter, cluster_chained, the scores,
    phash (hex) and blur_cutoff. `workers` (0: every core) share the pixel checks (see `find_duplicates`).
    """
    target = batches[-1]
    verdicts = [quality_verdicts(b, rules) for b in batches]
    reason, cutoff = verdicts[-1]
    pool = []
    for arrival, (frame, (why, _)) in enumerate(zip(batches, verdicts, strict=True)):
        passing = frame[why.isna().to_numpy()].copy()
        passing["arrival"] = arrival
        pool.append(passing)
    candidates = pd.concat(pool, ignore_index=True) if pool else target.iloc[0:0]
    dups = find_duplicates(
        candidates,
        rules.hash_threshold,
        workers,
        rules.verify_min_correlation,
        rules.crop_search(),
        rules.link_search(),
    )
    dups = dups[candidates["arrival"].to_numpy() == len(batches) - 1].set_index("image_id")

    out = target[["image_id", *SCORE_COLUMNS]].copy()
    out["phash"] = [None if pd.isna(h) else f"{int(h):016x}" for h in target["phash"]]
    joined = dups.reindex(target["image_id"])
    is_dup = joined["is_keeper"].eq(False).to_numpy()
    exact = joined["exact"].fillna(False).to_numpy(dtype=bool)
    reason = reason.to_numpy(dtype=object, copy=True)
    reason[is_dup & exact] = "exact_duplicate"
    reason[is_dup & ~exact] = "near_duplicate"
    out["status"] = np.where(pd.isna(reason), "kept", "removed")
    out["reason"] = reason
    out["duplicate_of"] = np.where(is_dup, joined["keeper"].to_numpy(dtype=object), None)
    out["duplicate_match"] = np.where(is_dup, joined["match"].to_numpy(dtype=object), None)
    out["hash_distance"] = joined["distance"].to_numpy()
    out["cluster_size"] = joined["cluster_size"].to_numpy()
    out["cluster_diameter"] = joined["cluster_diameter"].to_numpy()
    out["cluster_chained"] = joined["chained"].to_numpy(dtype=object)
    out["blur_cutoff"] = cutoff
    return out.reset_index(drop=True)


def clean_paths(
    paths: list[Path], rules: CleanRules = CleanRules(), workers: int = 0, timings: dict[str, float] | None = None
) -> pd.DataFrame:
    """Clean a flat list of image files as one batch (benchmarks, ad-hoc use): one row per path, in order. With
    `timings`, the wall seconds of the feature pass ("features") and of the decisions ("decide") are stored in it."""
    ids = [f"{i:09d}" for i in range(len(paths))]
    start = time.perf_counter()
    features = features_frame(ids, [str(p) for p in paths], rules, workers)
    middle = time.perf_counter()
    result = decide([features], rules, workers=workers)
    if timings is not None:
        timings.update(features=middle - start, decide=time.perf_counter() - middle)
    by_id = dict(zip(ids, (str(p) for p in paths), strict=True))
    result.insert(0, "path", [by_id[i] for i in result["image_id"]])
    result["duplicate_of"] = [by_id.get(d) if d else None for d in result["duplicate_of"]]
    return result.drop(columns=["image_id"])
