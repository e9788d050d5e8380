"""Clean one batch in the context of every earlier-arrived batch: cached features, the decision, and the
clean manifest (one row per raw file: kept or removed, why, and the scores behind it)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from synthaug.clean.decision import CleanRules, decide, features_frame
from synthaug.core.atomic import atomic_output
from synthaug.core.errors import InvalidInput, SynthaugError
from synthaug.core.layout import DataLayout
from synthaug.core.progress import ProgressFn
from synthaug.ingest.samples import manifest_digest

STORED_COLUMNS = ["stored_path", "stored_offset", "file_size", "width", "height", "channels", "pixel_hash"]
RAW_COLUMNS = ["image_id", "batch_id", "source_path", "label", *STORED_COLUMNS, "status", "error_code"]
CLEAN_COLUMNS = [
    "image_id",
    "batch_id",
    "source_path",
    "label",
    "status",
    "reason",
    "duplicate_of",
    "duplicate_match",
    *STORED_COLUMNS,
    "phash",
    "hash_distance",
    "cluster_size",
    "cluster_diameter",
    "cluster_chained",
    "min_side",
    "std",
    "entropy",
    "detail",
    "sharpness",
    "blur_cutoff",
]


class MissingUpstream(SynthaugError, RuntimeError):
    """An earlier batch's raw manifest is missing, so cross-batch dedup cannot be decided yet."""


@dataclass
class CleanSummary:
    """Counts a person asks for first, and where the manifest is."""

    batch_id: str
    manifest_path: Path
    total: int = 0
    kept: int = 0
    reasons: Counter = field(default_factory=Counter)
    max_cluster_diameter: int = 0
    chained_images: int = 0
    blur_cutoff: float | None = None


def _feature_key(rules: CleanRules) -> str:
    return f"{rules.hash_algorithm}-w{rules.work_size}-v3"


def batch_features(
    layout: DataLayout, batch_id: str, rules: CleanRules, workers: int = 0, progress: ProgressFn | None = None
) -> pd.DataFrame:
    """Features of every raw row of a batch, cached per raw-manifest version and feature settings."""
    raw_path = layout.raw_manifest(batch_id)
    if not raw_path.is_file():
        raise MissingUpstream(
            f"raw_images has not been materialized for batch {batch_id} ({raw_path} is missing); "
            "materialize raw_images for it first, then rerun clean_images"
        )
    raw_version = manifest_digest(raw_path, ["image_id", "pixel_hash", "status"])
    cache = layout.features_path(batch_id, _feature_key(rules))
    if cache.is_file():
        table = pq.read_table(cache)
        if (table.schema.metadata or {}).get(b"raw_version") == raw_version.encode():
            frame = table.to_pandas()
            # rebuilt from Arrow, not from pandas' column: a gap makes pandas read it as float64 (loses bits)
            signed = table.column("phash").to_pylist()
            frame["phash"] = pd.Series([None if v is None else np.uint64(v % (1 << 64)) for v in signed], dtype=object)
            return frame
    raw = _read_raw(layout, batch_id)
    root = str(layout.root)
    sources = [
        (f"{root}/{p}", int(o), int(s)) if st == "ok" and p else None
        for p, o, s, st in zip(raw["stored_path"], raw["stored_offset"], raw["file_size"], raw["status"], strict=True)
    ]
    frame = features_frame(raw["image_id"].tolist(), sources, rules, workers, progress)
    stored = frame.copy()
    stored["phash"] = pd.array(
        [None if pd.isna(v) else int(v) - (1 << 64) if int(v) >= 1 << 63 else int(v) for v in stored["phash"]],
        dtype="Int64",
    )
    table = pa.Table.from_pandas(stored, preserve_index=False)
    table = table.replace_schema_metadata({b"raw_version": raw_version.encode()})
    with atomic_output(cache, fsync=False) as tmp:
        pq.write_table(table, tmp)
    return frame


_NULLABLE_INTS = {pa.int8(): pd.Int8Dtype(), pa.int32(): pd.Int32Dtype(), pa.int64(): pd.Int64Dtype()}


def _read_raw(layout: DataLayout, batch_id: str) -> pd.DataFrame:
    """The raw manifest's columns cleaning needs, integers kept as integers even where null."""
    table = pq.read_table(layout.raw_manifest(batch_id), columns=RAW_COLUMNS)
    return table.to_pandas(types_mapper=_NULLABLE_INTS.get)


def missing_earlier_raw(layout: DataLayout, arrival: list[str], batch_id: str) -> list[str]:
    """Batches that arrived before `batch_id` and have no raw manifest yet: cleaning `batch_id` must wait for them
    (or fail), because its duplicates are decided against every earlier batch."""
    earlier = arrival[: arrival.index(batch_id)] if batch_id in arrival else []
    return [b for b in earlier if not layout.raw_manifest(b).is_file()]


def clean_batch(
    layout: DataLayout,
    arrival: list[str],
    batch_id: str,
    rules: CleanRules,
    workers: int = 0,
    progress: Callable[[str], ProgressFn] | None = None,
    note: Callable[[str], None] | None = None,
) -> CleanSummary:
    """Decide every image of `batch_id` against itself and the batches before it in `arrival`; write the
    clean manifest atomically. Later batches are ignored, so the result never depends on them.

    `progress(batch)` may return a callback for the feature computation of that batch (cached batches
    never call it); `note` is told when the duplicate decisions start and how long they took.
    """
    if batch_id not in arrival:
        raise InvalidInput(f"batch {batch_id} is not among the registered batches {arrival}")
    context = arrival[: arrival.index(batch_id) + 1]
    frames = [batch_features(layout, b, rules, workers, progress(b) if progress else None) for b in context]
    started = time.perf_counter()
    if note:
        images = sum(len(f) for f in frames)
        note(f"deciding {len(frames[-1])} images of {batch_id} against {images - len(frames[-1])} earlier ones")
    decision = decide(frames, rules, workers=workers)
    if note:
        note(f"decisions for {batch_id} took {time.perf_counter() - started:.1f} s")
    raw = _read_raw(layout, batch_id)
    merged = raw.drop(columns=["status"]).merge(decision, on="image_id", how="left", validate="one_to_one")
    manifest = merged[CLEAN_COLUMNS]
    summary = CleanSummary(batch_id, layout.clean_manifest(batch_id))
    with atomic_output(summary.manifest_path) as tmp:
        pq.write_table(pa.Table.from_pandas(manifest, preserve_index=False), tmp, compression="zstd")
    summary.total = len(manifest)
    summary.kept = int((manifest["status"] == "kept").sum())
    summary.reasons = Counter(manifest["reason"].dropna().tolist())
    diam = manifest["cluster_diameter"].dropna()
    summary.max_cluster_diameter = int(diam.max()) if len(diam) else 0
    summary.chained_images = int(manifest["cluster_chained"].eq(True).sum())
    cutoff = decision["blur_cutoff"].dropna()
    summary.blur_cutoff = float(cutoff.iloc[0]) if len(cutoff) else None
    return summary
