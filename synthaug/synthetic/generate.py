"""The synthetic augmentation set: per-class samples from the EMA generator of the latest GAN checkpoint, filtered
for class confidence and memorization, published as an ImageFolder tree with a provenance manifest.

Layout under `DataLayout.synthetic_dir()`:

* `current.json` names the complete generation (`{"generation": ..., "data_version": ...}`); it is replaced
  atomically and only after the generation is complete, so readers never see a partial set;
* `<generation>/images/<class_name>/<image_id>.png`: the accepted images (an ImageFolder tree; an unconditional
  generator's images sit under `images/unlabeled/`);
* `<generation>/rejected/<reason>/<class_name>/<image_id>.png`: what the filters removed, for a person to look at;
* `<generation>/manifest.parquet`: one row per candidate (accepted or not), columns `MANIFEST_SCHEMA`;
* `<generation>/meta.json`: the plan, the counts, the filter thresholds and the checkpoint the set came from.

A generation is built in a hidden `.<generation>.partial` folder and renamed into place once complete; leftovers
of a killed run are removed by the next run, and a superseded generation one run later (so a reader that resolved
the old pointer can finish reading it).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from synthaug.core.atomic import atomic_output, atomic_write_bytes
from synthaug.core.layout import DataLayout
from synthaug.core.progress import Progress, ProgressFn
from synthaug.models.gan.pipeline import load_sampler
from synthaug.models.gan.sampling import sample_grid_png, sample_per_class
from synthaug.models.metrics.classifier import SmallCNN, extract_features, load_classifier
from synthaug.models.stages import data_version as stats_data_version
from synthaug.tensors.build import UNLABELED, current_tensors
from synthaug.tensors.norm_stats import NormStats, load_stats

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.parquet"
META_NAME = "meta.json"
IMAGES_DIR = "images"
REJECTED_DIR = "rejected"
UNLABELED_FOLDER = "unlabeled"
LOW_CONFIDENCE = "low_confidence"
MEMORIZED = "memorized"
REJECT_REASONS = (MEMORIZED, LOW_CONFIDENCE)

MANIFEST_SCHEMA = pa.schema(
    [
        ("image_id", pa.string()),
        ("path", pa.string()),
        ("class_name", pa.string()),
        ("label", pa.int16()),
        ("checkpoint_version", pa.string()),
        ("checkpoint_step", pa.int64()),
        ("seed", pa.int64()),
        ("round", pa.int32()),
        ("sample_index", pa.int32()),
        ("round_size", pa.int32()),
        ("confidence", pa.float32()),
        ("nn_feature_distance", pa.float32()),
        ("nn_pixel_distance", pa.float32()),
        ("nn_train_row", pa.int64()),
        ("accepted", pa.bool_()),
        ("reject_reason", pa.string()),
    ]
)
"""One row per candidate. `path` is relative to the generation folder; `label` indexes `NormStats.classes`
(-1 and `class_name` "" when unlabeled); `seed`, `round_size` and `sample_index` reproduce the image as
`sample_per_class(sampler, round_size, classes=[label] or None when unlabeled, seed=seed)[0][sample_index]`
(`round` is the sampling round); `confidence` is the feature extractor's softmax probability of the intended
class (null when that filter is off or impossible); the two `nn_*_distance` columns are the distance to the
nearest real train image (null when not measured); `nn_train_row` is the row, in the train split of every batch
concatenated (`real_pixels`), of the nearest train image in pixel space (in feature space when only that space
flagged it); `reject_reason` is null, "memorized" or "low_confidence"."""


@dataclass(frozen=True)
class SyntheticSet:
    """The current synthetic set as its readers see it: the accepted images and every candidate's manifest row."""

    images: np.ndarray
    labels: np.ndarray
    manifest: pd.DataFrame
    path: Path
    checkpoint_version: str
    checkpoint_step: int
    classes: tuple[str, ...]
    data_version: str
    meta: dict


def current_generation(layout: DataLayout) -> tuple[str, str] | None:
    """(generation, data_version) named by `current.json`, or None when no synthetic set has been published."""
    pointer = layout.synthetic_pointer()
    if not pointer.is_file():
        return None
    info = json.loads(pointer.read_text())
    return str(info["generation"]), str(info["data_version"])


def read_png(path: Path) -> np.ndarray:
    """One PNG written by this module as C×H×W uint8 (grey or RGB)."""
    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise ValueError(f"{path} is not a readable PNG: rematerialize synthetic_images")
    if pixels.ndim == 2:
        return pixels[None]
    return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB).transpose(2, 0, 1)


def read_synthetic(layout: DataLayout) -> SyntheticSet:
    """The published synthetic set: accepted images (uint8 N×C×H×W, manifest order), labels (int64) and manifest.

    Raises FileNotFoundError when `synthetic_images` has not been materialized yet.
    """
    current = current_generation(layout)
    if current is None:
        raise FileNotFoundError(
            f"{layout.synthetic_pointer()} is missing: no synthetic set yet; materialize synthetic_images first"
        )
    generation, data_version = current
    path = layout.synthetic_generation(generation)
    meta = json.loads((path / META_NAME).read_text())
    if meta.get("format") != FORMAT_VERSION:
        raise ValueError(
            f"{path} has synthetic-set format {meta.get('format')}, expected {FORMAT_VERSION}: "
            "rematerialize synthetic_images"
        )
    manifest = pd.read_parquet(path / MANIFEST_NAME)
    accepted = manifest[manifest["accepted"]]
    shape = tuple(meta["shape"])
    images = (
        np.stack([read_png(path / p) for p in accepted["path"]]) if len(accepted) else np.empty((0, *shape), np.uint8)
    )
    return SyntheticSet(
        images=images,
        labels=accepted["label"].to_numpy(np.int64),
        manifest=manifest,
        path=path,
        checkpoint_version=str(meta["checkpoint"]["version"]),
        checkpoint_step=int(meta["checkpoint"]["step"]),
        classes=tuple(meta["classes"]),
        data_version=data_version,
        meta=meta,
    )


MODES = ("ratio", "balance", "count")
MIN_REFERENCE_IMAGES = 20  # fewer real val images than this: the real-vs-real reference comes from the train split
MAX_REFERENCE_IMAGES = 1000  # the median of this many nearest-neighbour distances is stable to about ±5 %
GRID_PER_CLASS = 8


@dataclass(frozen=True)
class SyntheticConfig:
    """How many images to make per class, and the two filters.

    Count: `mode` "ratio" makes `ratio` × each class's real train count; "balance" fills every class up to the
    majority class's count (the majority gets none); "count" makes `per_class` of each class. `classes` limits
    generation to those class names (empty: every class). A plan that adds up to zero images is an error.

    Confidence filter: a candidate is rejected as "low_confidence" when the feature extractor's softmax
    probability of its intended class is below `min_confidence` (0 disables it; an unconditional generator has no
    intended class, so it is skipped and the summary says so).

    Memorization filter, relative to the data so a threshold means the same on any data set: the scale of
    "distinct real images" is the median distance from each real val image to its nearest real train image
    (leave-one-out train-to-train when the val split holds fewer than `MIN_REFERENCE_IMAGES`). A candidate is
    rejected as "memorized" when its nearest real train image is closer than `memorization_ratio` × that scale in
    pixel space (RMS difference over the image interior, minimized over shifts of up to `max_shift` pixels, so
    shifted and noisy copies count), OR closer than `feature_memorization_ratio` × the corresponding median
    measured in the feature extractor's space (a stricter ratio because a small extractor's features put distinct
    real images close together more often). Either ratio 0 disables that space. The rule's false-alarm rate on the
    real reference images themselves is reported.

    Sampling runs in up to `max_rounds` rounds per class, each drawing the missing count × `oversample` divided
    by the acceptance rate seen so far, and never more than `max_candidates` × the planned count in all (so a poor
    generator costs a bounded amount of time); a class still short at the end is reported as a shortfall.
    """

    mode: str = "ratio"
    ratio: float = 1.0
    per_class: int = 0
    classes: tuple[str, ...] = ()
    min_confidence: float = 0.5
    memorization_ratio: float = 0.5
    feature_memorization_ratio: float = 0.25
    max_shift: int = 2
    oversample: float = 1.25
    max_rounds: int = 4
    max_candidates: float = 3.0
    seed: int = 0

    def __post_init__(self) -> None:
        """Refuse out-of-range settings before any work, naming the field."""
        if self.mode not in MODES:
            raise ValueError(f"synthetic mode must be one of {list(MODES)}, got {self.mode!r}")
        checks = {
            "ratio": (self.ratio, 0.0, 100.0),
            "per_class": (self.per_class, 0, 10_000_000),
            "min_confidence": (self.min_confidence, 0.0, 1.0),
            "memorization_ratio": (self.memorization_ratio, 0.0, 10.0),
            "feature_memorization_ratio": (self.feature_memorization_ratio, 0.0, 10.0),
            "max_shift": (self.max_shift, 0, 8),
            "oversample": (self.oversample, 1.0, 10.0),
            "max_rounds": (self.max_rounds, 1, 100),
            "max_candidates": (self.max_candidates, 1.0, 100.0),
        }
        for name, (value, low, high) in checks.items():
            if not (low <= value <= high) or (isinstance(value, float) and math.isnan(value)):
                raise ValueError(f"synthetic config {name} must be in [{low}, {high}], got {value}")

    def to_dict(self) -> dict:
        """JSON-ready form for `meta.json`."""
        return {**asdict(self), "classes": list(self.classes)}


def plan_counts(train_counts: Mapping[str, int], config: SyntheticConfig) -> dict[str, int]:
    """Images to generate per class name, from each class's real train count (see `SyntheticConfig`).

    Raises ValueError naming the class when a requested class is unknown or has no train images (the generator
    never saw it), and when the plan adds up to zero images.
    """
    unknown = [c for c in config.classes if c not in train_counts]
    if unknown:
        raise ValueError(
            f"classes {unknown} are not classes of the training tensors {sorted(train_counts)}: the generator never "
            "saw them; request only known classes"
        )
    names = list(config.classes) or list(train_counts)
    if config.mode == "ratio":
        plan = {c: int(round(config.ratio * train_counts[c])) for c in names}
    elif config.mode == "balance":
        if len(train_counts) < 2:
            raise ValueError("balance mode needs at least 2 classes; use mode 'ratio' or 'count'")
        majority = max(train_counts.values())
        plan = {c: majority - train_counts[c] for c in names}
    else:
        plan = {c: config.per_class for c in names}
    unseen = [c for c in names if plan[c] > 0 and train_counts[c] == 0]
    if unseen:
        raise ValueError(
            f"classes {unseen} have no real train images, so the generator never saw them: land images of them "
            "and retrain gan_checkpoint, or leave them out of `classes`"
        )
    if sum(plan.values()) == 0:
        why = {
            "ratio": f"ratio {config.ratio} of the train counts {dict(train_counts)} rounds to 0",
            "balance": f"the classes are already balanced ({dict(train_counts)}), nothing to fill",
            "count": "per_class is 0",
        }[config.mode]
        raise ValueError(f"the synthetic set would hold 0 images: {why}; ask for at least one image")
    return plan


# --------------------------------------------------------------------------------------------------
# Distances and filters (pure: arrays in, scores out)
# --------------------------------------------------------------------------------------------------


def _interior(images: np.ndarray, shift: int, dy: int = 0, dx: int = 0) -> torch.Tensor:
    """The image interior (a `shift`-pixel border removed), moved by (dy, dx), flattened to float on [0, 1]."""
    h, w = images.shape[2:]
    crop = images[:, :, shift + dy : h - shift + dy, shift + dx : w - shift + dx]
    return torch.from_numpy(np.ascontiguousarray(crop)).reshape(len(images), -1).float().div_(255.0)


def _nearest(queries: torch.Tensor, base: torch.Tensor, exclude_self: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared L2 distance from each query row to its nearest base row, and that row, in memory-bounded chunks."""
    base_sq = base.pow(2).sum(1)
    rows = max(1, (1 << 23) // max(len(base), 1))
    best, where = [], []
    for start in range(0, len(queries), rows):
        q = queries[start : start + rows]
        d2 = q.pow(2).sum(1, keepdim=True) + base_sq[None] - 2.0 * (q @ base.T)
        if exclude_self:
            rows_here = torch.arange(len(q), device=q.device)
            d2[rows_here, rows_here + start] = float("inf")
        value, arg = d2.min(1)
        best.append(value.clamp_(min=0.0).cpu())
        where.append(arg.cpu())
    return torch.cat(best), torch.cat(where)


def nearest_pixel_distance(
    queries: np.ndarray,
    train: np.ndarray,
    max_shift: int = 2,
    *,
    exclude_self: bool = False,
    device: torch.device | str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """RMS pixel difference (0..1 scale) from each query to its nearest train image, minimized over shifts of the
    query by up to `max_shift` pixels each way, compared on the interior both share; and that image's row.

    uint8 N×C×H×W inputs. `exclude_self`: queries are the train images themselves (leave-one-out). `device`: where
    the distance matmuls run (default CPU)."""
    if not len(queries) or not len(train):
        return np.full(len(queries), np.nan, np.float32), np.full(len(queries), -1, np.int64)
    shift = min(max_shift, max(0, (min(train.shape[2:]) - 4) // 2))
    base = _interior(train, shift).to(device)
    best = torch.full((len(queries),), float("inf"))
    where = torch.full((len(queries),), -1, dtype=torch.long)
    for dy in range(-shift, shift + 1):
        for dx in range(-shift, shift + 1):
            d2, arg = _nearest(_interior(queries, shift, dy, dx).to(device), base, exclude_self)
            closer = d2 < best
            best = torch.where(closer, d2, best)
            where = torch.where(closer, arg, where)
    return (best / base.shape[1]).sqrt().numpy().astype(np.float32), where.numpy()


def nearest_feature_distance(
    queries: np.ndarray, train: np.ndarray, *, exclude_self: bool = False, device: torch.device | str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """L2 distance from each query feature vector to its nearest train feature vector, and that row (float64: the
    expanded square would lose exact copies to cancellation in float32)."""
    if not len(queries) or not len(train):
        return np.full(len(queries), np.nan, np.float32), np.full(len(queries), -1, np.int64)
    d2, arg = _nearest(
        torch.from_numpy(queries).to(device, torch.float64),
        torch.from_numpy(train).to(device, torch.float64),
        exclude_self,
    )
    return d2.sqrt().numpy().astype(np.float32), arg.numpy()


def to_model_input(pixels: np.ndarray, affine: tuple[np.ndarray, np.ndarray] | None = None) -> torch.Tensor:
    """uint8 N×C×H×W → the float inputs the models were trained on (`NormStats.affine("gan")`; default 0..255 →
    [-1, 1])."""
    scale, offset = affine if affine is not None else (np.full(pixels.shape[1], 2 / 255), np.full(pixels.shape[1], -1))
    x = torch.from_numpy(pixels).float()
    return x * torch.as_tensor(scale).float().view(1, -1, 1, 1) + torch.as_tensor(offset).float().view(1, -1, 1, 1)


def from_model_output(images: torch.Tensor, affine: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Generator output in [-1, 1] (N×C×H×W) → uint8 pixels, the inverse of `to_model_input`."""
    channels = images.shape[1]
    scale, offset = affine if affine is not None else (np.full(channels, 2 / 255), np.full(channels, -1))
    scale_t = torch.as_tensor(scale).float().view(1, -1, 1, 1)
    offset_t = torch.as_tensor(offset).float().view(1, -1, 1, 1)
    pixels = (images.detach().float().cpu().clamp(-1, 1) - offset_t) / scale_t
    return pixels.round().clamp_(0, 255).to(torch.uint8).numpy()


def _features(extractor: SmallCNN, pixels: np.ndarray, affine: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """The extractor's penultimate features (float64) of uint8 images, normalized as it was trained."""
    return extract_features(extractor, to_model_input(pixels, affine)).numpy()


@dataclass(frozen=True)
class MemorizationReference:
    """The real train images (pixels, features) and the real-vs-real distance scales the thresholds are relative to.

    `source` says where the scale came from ("val" or "train leave-one-out"); `pixel_scale` and `feature_scale`
    are median nearest-train distances of those real images (NaN when not measured); `reference_pixel` and
    `reference_feature` keep each reference image's distance, for the rule's false-alarm rate."""

    train_pixels: np.ndarray
    train_features: np.ndarray | None
    source: str
    pixel_scale: float
    feature_scale: float
    reference_pixel: np.ndarray
    reference_feature: np.ndarray

    def thresholds(self, config: SyntheticConfig) -> tuple[float, float]:
        """(pixel, feature) distance below which a candidate counts as memorized; 0 when that check is off."""
        pixel = config.memorization_ratio * self.pixel_scale if config.memorization_ratio > 0 else 0.0
        feature = 0.0
        if config.feature_memorization_ratio > 0 and self.train_features is not None:
            feature = config.feature_memorization_ratio * self.feature_scale
        return float(np.nan_to_num(pixel)), float(np.nan_to_num(feature))

    def false_alarm_rate(self, config: SyntheticConfig) -> float:
        """Fraction of the real reference images (distinct from every train image) the rule would call memorized."""
        if not len(self.reference_pixel):
            return float("nan")
        pixel, feature = self.thresholds(config)
        flagged = self.reference_pixel < pixel
        if feature > 0:
            flagged |= self.reference_feature < feature
        return float(flagged.mean())


def build_reference(
    train: np.ndarray,
    real: np.ndarray | None,
    config: SyntheticConfig,
    extractor: SmallCNN | None = None,
    affine: tuple[np.ndarray, np.ndarray] | None = None,
    device: torch.device | str | None = None,
) -> MemorizationReference:
    """Features of the real train images and the real-vs-real distance scale: real val images (`real`, at most
    `MAX_REFERENCE_IMAGES` of them) to their nearest train image, or leave-one-out within the train images when
    fewer than `MIN_REFERENCE_IMAGES` val images exist."""
    if len(train) < 2:
        raise ValueError(
            f"the memorization check needs at least 2 real train images, got {len(train)}: land more images"
        )
    rng = np.random.default_rng(config.seed)
    train_features = _features(extractor, train, affine) if extractor is not None else None
    if real is not None and len(real) >= MIN_REFERENCE_IMAGES:
        pick = np.sort(rng.permutation(len(real))[:MAX_REFERENCE_IMAGES])
        queries, source, exclude = real[pick], "val", False
        query_features = _features(extractor, queries, affine) if extractor is not None else None
        base_pixels, base_features = train, train_features
    else:
        pick = np.sort(rng.permutation(len(train))[:MAX_REFERENCE_IMAGES])
        queries, source, exclude = train[pick], "train leave-one-out", True
        base_pixels = train[pick]
        query_features = train_features[pick] if train_features is not None else None
        base_features = query_features
    ref_pixel, _ = nearest_pixel_distance(queries, base_pixels, config.max_shift, exclude_self=exclude, device=device)
    ref_feature = np.full(len(queries), np.nan, np.float32)
    if query_features is not None and base_features is not None:
        ref_feature, _ = nearest_feature_distance(query_features, base_features, exclude_self=exclude, device=device)
    return MemorizationReference(
        train_pixels=train,
        train_features=train_features,
        source=source,
        pixel_scale=float(np.median(ref_pixel)),
        feature_scale=float(np.median(ref_feature)) if query_features is not None else float("nan"),
        reference_pixel=ref_pixel,
        reference_feature=ref_feature,
    )


@dataclass
class FilterScores:
    """Per-candidate filter scores and decisions (NaN scores: not measured)."""

    confidence: np.ndarray
    nn_pixel_distance: np.ndarray
    nn_feature_distance: np.ndarray
    nn_train_row: np.ndarray
    low_confidence: np.ndarray
    memorized: np.ndarray

    @property
    def accepted(self) -> np.ndarray:
        """Candidates that pass both filters."""
        return ~(self.low_confidence | self.memorized)

    @property
    def reasons(self) -> list[str | None]:
        """Why each candidate was rejected: "memorized" first (the more serious), then "low_confidence"."""
        return [
            MEMORIZED if m else LOW_CONFIDENCE if c else None
            for m, c in zip(self.memorized.tolist(), self.low_confidence.tolist(), strict=True)
        ]


def filter_candidates(
    candidates: np.ndarray,
    labels: np.ndarray,
    reference: MemorizationReference,
    config: SyntheticConfig,
    extractor: SmallCNN | None = None,
    affine: tuple[np.ndarray, np.ndarray] | None = None,
    device: torch.device | str | None = None,
) -> FilterScores:
    """Score uint8 N×C×H×W candidates with intended class indices `labels` (-1: none) against the real train images
    of `reference`, and decide each filter (see `SyntheticConfig` for the rules). One extractor pass gives both
    the features and the class probabilities (its head applied to those features)."""
    n = len(candidates)
    labels = np.asarray(labels, np.int64)
    confidence = np.full(n, np.nan, np.float32)
    labeled = labels >= 0
    features = _features(extractor, candidates, affine) if extractor is not None and n else None
    if features is not None and config.min_confidence > 0 and labeled.any():
        with torch.no_grad():
            proba = extractor.head(torch.from_numpy(features[labeled]).float()).softmax(dim=1).numpy()
        confidence[labeled] = proba[np.arange(len(proba)), labels[labeled]]
    low_confidence = np.nan_to_num(confidence, nan=1.0) < config.min_confidence
    pixel_limit, feature_limit = reference.thresholds(config)
    pixel, row = nearest_pixel_distance(candidates, reference.train_pixels, config.max_shift, device=device)
    feature = np.full(n, np.nan, np.float32)
    if features is not None and reference.train_features is not None:
        feature, feature_row = nearest_feature_distance(features, reference.train_features, device=device)
        closer_in_features = feature < feature_limit
        row = np.where(closer_in_features & ~(pixel < pixel_limit), feature_row, row)
    memorized = pixel < pixel_limit
    if feature_limit > 0:
        memorized |= feature < feature_limit
    return FilterScores(confidence, pixel, feature, row, low_confidence, memorized)


# --------------------------------------------------------------------------------------------------
# Generating and publishing a set
# --------------------------------------------------------------------------------------------------


@dataclass
class SyntheticSummary:
    """What `generate_synthetic` published: the generation folder, its version, `meta.json`'s content and two
    pictures (PNG bytes): accepted samples beside real train images per class, and rejected samples beside their
    nearest real train image (empty when nothing was rejected)."""

    path: Path
    generation: str
    data_version: str
    meta: dict
    grid_png: bytes
    rejected_png: bytes = b""

    @property
    def totals(self) -> dict:
        """Candidates, accepted and rejected images, and the filters' counts and rates over every class."""
        return dict(self.meta["totals"])

    @property
    def per_class(self) -> dict[str, dict[str, int]]:
        """Planned, candidate, accepted, rejected (by reason) and shortfall counts per class name."""
        return {k: dict(v) for k, v in self.meta["per_class"].items()}

    @property
    def notes(self) -> list[str]:
        """What a person should know: filters skipped, a checkpoint older than the data, classes left short."""
        return list(self.meta["notes"])


def real_pixels(layout: DataLayout, stats: NormStats, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Every image of one split over all batches as stored (uint8 N×C×H×W, batch then shard order) and its
    label index into `stats.classes` (-1 = unlabeled)."""
    index = stats.class_to_index
    xs, ys = [], []
    for batch_id in stats.batches:
        tensor_set = current_tensors(layout, batch_id)
        if tensor_set is None:
            raise FileNotFoundError(f"batch {batch_id} has no training tensors: materialize training_tensors")
        stale = [c for c in tensor_set.classes if c not in index]
        if stale:
            raise ValueError(f"classes {stale} of batch {batch_id} are not in normalization_stats: rematerialize it")
        lut = np.asarray([index[c] for c in tensor_set.classes] + [UNLABELED], dtype=np.int64)
        for x_path, y_path, rows in tensor_set.shards(split):
            if rows:
                xs.append(np.load(x_path))
                ys.append(lut[np.load(y_path).astype(np.int64)])
    if not xs:
        return np.empty((0, stats.channels, stats.size, stats.size), np.uint8), np.empty(0, np.int64)
    return np.concatenate(xs), np.concatenate(ys)


def derive_seed(seed: int, round_index: int, label: int) -> int:
    """The sampling seed of one class in one round: independent streams for every (seed, round, class)."""
    return int(np.random.SeedSequence([seed, round_index, label + 1]).generate_state(1, np.uint32)[0])


def _load_extractor(
    layout: DataLayout, stats: NormStats, conditional: bool, config: SyntheticConfig, notes: list[str]
) -> SmallCNN | None:
    """The feature extractor when it fits these tensors; None (with a note) when the filters can do without it."""
    path = layout.feature_extractor_path()
    if not path.is_file():
        if conditional and config.min_confidence > 0:
            raise FileNotFoundError(
                f"{path} is missing: the confidence filter needs it; materialize feature_extractor first "
                "(or set min_confidence to 0)"
            )
        notes.append("no feature extractor: memorization checked in pixel space only")
        return None
    extractor, _ = load_classifier(path)
    shape = (extractor.config.channels, extractor.config.resolution, extractor.config.resolution)
    fits = shape == (stats.channels, stats.size, stats.size) and extractor.config.num_classes == len(stats.classes)
    if fits:
        return extractor
    if conditional:
        raise ValueError(
            f"{path} was trained for {extractor.config.num_classes} classes of shape {shape}, the tensors have "
            f"{len(stats.classes)} classes of shape {(stats.channels, stats.size, stats.size)}: "
            "rematerialize feature_extractor"
        )
    notes.append(f"{path} does not fit these tensors: memorization checked in pixel space only")
    return None


def _png_bytes(pixels: np.ndarray) -> bytes:
    """C×H×W uint8 → PNG bytes (grey or RGB)."""
    image = pixels[0] if pixels.shape[0] == 1 else cv2.cvtColor(pixels.transpose(1, 2, 0), cv2.COLOR_RGB2BGR)
    ok, buffer = cv2.imencode(".png", image)
    if not ok:
        raise ValueError("could not encode a synthetic image as PNG")
    return buffer.tobytes()


def _display(pixels: list[np.ndarray], shape: tuple[int, ...]) -> torch.Tensor:
    """uint8 C×H×W images → [-1, 1] floats for `sample_grid_png` (display only)."""
    stacked = np.stack(pixels) if pixels else np.empty((0, *shape), np.uint8)
    return torch.from_numpy(stacked).float().div(127.5).sub(1.0)


def generate_synthetic(
    layout: DataLayout,
    config: SyntheticConfig,
    progress: ProgressFn | None = None,
    device: torch.device | str | None = None,
) -> SyntheticSummary:
    """Sample the planned images per class from the EMA generator of the latest checkpoint, filter them, and
    publish them as a new generation (see the module docstring for the layout and `SyntheticConfig` for the rules).

    Raises FileNotFoundError when there is no checkpoint ("materialize gan_checkpoint first"), no statistics or
    (with the confidence filter on) no feature extractor; ValueError for an impossible plan or a generator that
    does not know the tensors' classes. `progress(accepted, planned, elapsed_s)` reports as images are accepted.
    `device` (default CPU) runs the generator and the nearest-neighbour searches; the extractor stays on CPU.
    """
    sampler, checkpoint = load_sampler(layout.gan_checkpoints_dir())
    sampler = sampler.to(device)
    stats = load_stats(layout)
    notes: list[str] = []
    known = int(sampler.config.num_classes)
    conditional = known > 0
    if conditional and known != len(stats.classes):
        unseen = list(stats.classes[known:])
        raise ValueError(
            f"the generator of checkpoint {checkpoint.path} knows {known} classes, the training tensors have "
            f"{len(stats.classes)} {list(stats.classes)}"
            + (f"; the generator never saw {unseen}" if unseen else "")
            + ": rematerialize gan_checkpoint"
        )
    shape = (stats.channels, stats.size, stats.size)
    if (sampler.config.channels, sampler.config.resolution, sampler.config.resolution) != shape:
        raise ValueError(
            f"the generator of checkpoint {checkpoint.path} makes images of shape "
            f"{(sampler.config.channels, sampler.config.resolution, sampler.config.resolution)}, the training "
            f"tensors are {shape}: rematerialize gan_checkpoint"
        )
    if checkpoint.state.get("data_version") not in (None, stats_data_version(stats)):
        notes.append(
            f"checkpoint {checkpoint.version} was trained before the training tensors last changed: "
            "rematerialize gan_checkpoint for a generator that saw every batch"
        )
    train_x, train_y = real_pixels(layout, stats, "train")
    if conditional:
        counts = {name: int((train_y == i).sum()) for i, name in enumerate(stats.classes)}
    else:
        if config.classes:
            raise ValueError(
                f"the generator of checkpoint {checkpoint.path} is unconditional (trained without classes), so it "
                f"cannot make classes {list(config.classes)}: leave `classes` empty"
            )
        counts = {"": len(train_x)}
        notes.append("unconditional generator: images are unlabeled and the confidence filter is skipped")
    plan = plan_counts(counts, config)
    extractor = _load_extractor(layout, stats, conditional, config, notes)
    if conditional and extractor is not None and config.min_confidence == 0:
        notes.append("confidence filter off (min_confidence 0)")
    affine = stats.affine("gan")
    val_x, _ = real_pixels(layout, stats, "val")
    reference = build_reference(train_x, val_x, config, extractor, affine, device)
    generation = f"g-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"
    root = layout.synthetic_dir()
    staging = root / f".{generation}.partial"
    previous = _current_name(layout)
    _remove_stale(root, keep={previous})
    staging.mkdir(parents=True)
    try:
        run = _Run(config, plan, conditional, stats, checkpoint.version, checkpoint.step, staging)
        run.sample(sampler, reference, extractor, affine, Progress(progress, sum(plan.values())), device)
        meta = run.meta(shape, checkpoint.path, checkpoint.state.get("data_version"), reference, notes)
        with atomic_output(staging / MANIFEST_NAME) as tmp:
            pq.write_table(pa.Table.from_pylist(run.rows, schema=MANIFEST_SCHEMA), tmp)
        manifest_digest = hashlib.sha256((staging / MANIFEST_NAME).read_bytes()).hexdigest()
        meta["manifest_sha256"] = manifest_digest
        atomic_write_bytes(staging / META_NAME, (json.dumps(meta, indent=1, sort_keys=True) + "\n").encode())
        os.rename(staging, layout.synthetic_generation(generation))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    data_version = manifest_digest[:16]
    _switch_pointer(layout, generation, data_version)
    _remove_stale(root, keep={generation, previous})
    grid, rejected = run.pictures(train_x, train_y, shape)
    return SyntheticSummary(layout.synthetic_generation(generation), generation, data_version, meta, grid, rejected)


def _switch_pointer(layout: DataLayout, generation: str, data_version: str) -> None:
    """Publish a complete generation: replace `current.json` atomically."""
    pointer = {"generation": generation, "data_version": data_version}
    atomic_write_bytes(layout.synthetic_pointer(), (json.dumps(pointer) + "\n").encode())


def _current_name(layout: DataLayout) -> str | None:
    """The published generation's folder name, which stale-cleanup must keep."""
    current = current_generation(layout)
    return current[0] if current else None


def _remove_stale(root: Path, keep: set[str | None]) -> None:
    """Delete generations not in `keep`, and partial ones left by killed runs (caller holds the lock). The
    generation just replaced is kept until the next run, so a reader that resolved the old pointer can finish."""
    if not root.is_dir():
        return
    for entry in root.iterdir():
        if entry.is_dir() and entry.name not in keep and entry.name.startswith(("g-", ".g-")):
            shutil.rmtree(entry, ignore_errors=True)


@dataclass
class _Run:
    """The state of one generation while it is sampled: manifest rows, counts and a few images for the pictures."""

    config: SyntheticConfig
    plan: dict[str, int]
    conditional: bool
    stats: NormStats
    checkpoint_version: str
    checkpoint_step: int
    folder: Path
    rows: list[dict] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    flags: dict[str, int] = field(default_factory=lambda: {"confidence_failed": 0, "memorized_flagged": 0})
    shown: list[tuple[int, np.ndarray]] = field(default_factory=list)
    shown_rejected: list[tuple[int, np.ndarray, int]] = field(default_factory=list)

    def label_of(self, name: str) -> int:
        """The label index the generator is asked for (-1 for an unconditional generator)."""
        return self.stats.class_to_index[name] if self.conditional else UNLABELED

    def sample(
        self,
        sampler: torch.nn.Module,
        reference: MemorizationReference,
        extractor: SmallCNN | None,
        affine: tuple[np.ndarray, np.ndarray],
        reporter: Progress,
        device: torch.device | str | None,
    ) -> None:
        """Draw, filter and write candidates class by class in rounds until each class has its planned count."""
        self.counts = {
            _display_name(n): dict.fromkeys(("planned", "candidates", "accepted") + REJECT_REASONS, 0)
            for n in self.plan
        }
        for name, n in self.plan.items():
            self.counts[_display_name(name)]["planned"] = n
        accepted_total = 0
        for round_index in range(self.config.max_rounds):
            for name, planned in self.plan.items():
                counts = self.counts[_display_name(name)]
                missing = planned - counts["accepted"]
                if missing <= 0:
                    continue
                rate = counts["accepted"] / counts["candidates"] if counts["candidates"] else 1.0
                budget = math.ceil(self.config.max_candidates * planned) - counts["candidates"]
                draw = min(math.ceil(missing * self.config.oversample / max(rate, 1 / 100)), budget)
                if draw <= 0:
                    continue
                label = self.label_of(name)
                seed = derive_seed(self.config.seed, round_index, label)
                images, _ = sample_per_class(sampler, draw, classes=[label] if self.conditional else None, seed=seed)
                pixels = from_model_output(images, affine)
                labels = np.full(draw, label)
                scores = filter_candidates(pixels, labels, reference, self.config, extractor, affine, device)
                passed = np.flatnonzero(scores.accepted)
                keep = int(passed[missing - 1]) + 1 if len(passed) >= missing else draw
                self._write(name, label, pixels[:keep], scores, keep, round_index, seed)
                accepted_total += min(len(passed), missing)
                reporter.update(accepted_total)

    def _write(
        self, name: str, label: int, pixels: np.ndarray, scores: FilterScores, keep: int, round_index: int, seed: int
    ) -> None:
        """Write the first `keep` candidates of one draw as PNGs under images/ or rejected/ and add their rows."""
        folder = _display_name(name) if name else UNLABELED_FOLDER
        counts = self.counts[_display_name(name)]
        reasons = scores.reasons
        for i in range(keep):
            reason = reasons[i]
            image_id = f"{'u' if label < 0 else f'c{label}'}-r{round_index}-{i:06d}"
            rel = (
                f"{IMAGES_DIR}/{folder}/{image_id}.png"
                if reason is None
                else f"{REJECTED_DIR}/{reason}/{folder}/{image_id}.png"
            )
            target = self.folder / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(_png_bytes(pixels[i]))
            self.rows.append(
                {
                    "image_id": image_id,
                    "path": rel,
                    "class_name": name,
                    "label": label,
                    "checkpoint_version": self.checkpoint_version,
                    "checkpoint_step": self.checkpoint_step,
                    "seed": seed,
                    "round": round_index,
                    "sample_index": i,
                    "round_size": len(scores.accepted),
                    "confidence": _finite_or_none(scores.confidence[i]),
                    "nn_feature_distance": _finite_or_none(scores.nn_feature_distance[i]),
                    "nn_pixel_distance": _finite_or_none(scores.nn_pixel_distance[i]),
                    "nn_train_row": int(scores.nn_train_row[i]),
                    "accepted": reason is None,
                    "reject_reason": reason,
                }
            )
            counts["candidates"] += 1
            self.flags["confidence_failed"] += int(scores.low_confidence[i])
            self.flags["memorized_flagged"] += int(scores.memorized[i])
            if reason is None:
                counts["accepted"] += 1
                if sum(1 for c, _ in self.shown if c == label) < GRID_PER_CLASS:
                    self.shown.append((label, pixels[i]))
            else:
                counts[reason] += 1
                if sum(1 for c, _, _ in self.shown_rejected if c == label) < GRID_PER_CLASS:
                    self.shown_rejected.append((label, pixels[i], int(scores.nn_train_row[i])))

    def meta(
        self,
        shape: tuple[int, int, int],
        checkpoint_path: Path,
        trained_on: str | None,
        reference: MemorizationReference,
        notes: list[str],
    ) -> dict:
        """The document `meta.json` holds: plan, counts, filter thresholds and rates, provenance and notes."""
        per_class = {}
        for name, counts in self.counts.items():
            per_class[name] = {
                **counts,
                "rejected": counts[MEMORIZED] + counts[LOW_CONFIDENCE],
                "shortfall": max(counts["planned"] - counts["accepted"], 0),
            }
        short = {k: v["shortfall"] for k, v in per_class.items() if v["shortfall"]}
        if short:
            notes.append(
                f"classes {short} are short of their planned count after {self.config.max_rounds} rounds or "
                f"{self.config.max_candidates} × the plan in candidates: the "
                "filters reject most of their samples; train the GAN longer or relax the filters"
            )
        candidates = sum(v["candidates"] for v in per_class.values())
        pixel_limit, feature_limit = reference.thresholds(self.config)
        totals = {
            "planned": sum(v["planned"] for v in per_class.values()),
            "candidates": candidates,
            "accepted": sum(v["accepted"] for v in per_class.values()),
            "rejected": sum(v["rejected"] for v in per_class.values()),
            "rejected_memorized": sum(v[MEMORIZED] for v in per_class.values()),
            "rejected_low_confidence": sum(v[LOW_CONFIDENCE] for v in per_class.values()),
            "shortfall": sum(short.values()),
            "confidence_failed": self.flags["confidence_failed"],
            "confidence_rejection_rate": _rate(self.flags["confidence_failed"], candidates),
            "memorized": self.flags["memorized_flagged"],
            "memorization_rate": _rate(self.flags["memorized_flagged"], candidates),
        }
        confidence_on = self.conditional and self.config.min_confidence > 0 and reference.train_features is not None
        return {
            "format": FORMAT_VERSION,
            "shape": list(shape),
            "classes": list(self.stats.classes) if self.conditional else [],
            "conditional": self.conditional,
            "checkpoint": {
                "version": self.checkpoint_version,
                "step": self.checkpoint_step,
                "path": str(checkpoint_path),
                "data_version": trained_on,
            },
            "tensors_data_version": stats_data_version(self.stats),
            "config": self.config.to_dict(),
            "plan": {_display_name(k): v for k, v in self.plan.items()},
            "per_class": per_class,
            "totals": totals,
            "filters": {
                "confidence": {"enabled": confidence_on, "min_confidence": self.config.min_confidence},
                "memorization": {
                    "reference": reference.source,
                    "reference_images": len(reference.reference_pixel),
                    "train_images": len(reference.train_pixels),
                    "max_shift": self.config.max_shift,
                    "pixel_scale": _finite_or_none(reference.pixel_scale),
                    "pixel_threshold": pixel_limit,
                    "feature_scale": _finite_or_none(reference.feature_scale),
                    "feature_threshold": feature_limit,
                    "reference_false_alarm_rate": _finite_or_none(reference.false_alarm_rate(self.config)),
                },
            },
            "notes": notes,
        }

    def pictures(self, train_x: np.ndarray, train_y: np.ndarray, shape: tuple[int, ...]) -> tuple[bytes, bytes]:
        """(accepted beside real train images per class, rejected beside their nearest train image) as PNG bytes."""
        names = list(self.stats.classes) if self.conditional else [UNLABELED_FOLDER]

        def shown_label(label: int) -> int:
            return label if self.conditional else 0

        real_rows = []
        for label in sorted({c for c, _ in self.shown}):
            real_rows.extend(np.flatnonzero(train_y == label)[:GRID_PER_CLASS] if label >= 0 else range(GRID_PER_CLASS))
        real_rows = [r for r in real_rows if r < len(train_x)]
        grid = b""
        if self.shown:
            grid = sample_grid_png(
                _display([p for _, p in self.shown], shape),
                torch.tensor([shown_label(c) for c, _ in self.shown]),
                _display([train_x[r] for r in real_rows], shape),
                torch.tensor([shown_label(int(train_y[r])) for r in real_rows]),
                names,
                per_class=GRID_PER_CLASS,
            )
        rejected = b""
        if self.shown_rejected:
            labels = torch.tensor([shown_label(c) for c, _, _ in self.shown_rejected])
            rejected = sample_grid_png(
                _display([p for _, p, _ in self.shown_rejected], shape),
                labels,
                _display([train_x[r] for _, _, r in self.shown_rejected], shape),
                labels,
                names,
                per_class=GRID_PER_CLASS,
            )
        return grid, rejected


def _display_name(class_name: str) -> str:
    """Class name as metadata and folders show it ("unlabeled" for the unconditional generator's images)."""
    return class_name or UNLABELED_FOLDER


def _rate(part: int, whole: int) -> float:
    """part / whole to 4 decimals (0 when nothing was counted)."""
    return round(part / whole, 4) if whole else 0.0


def _finite_or_none(value: float) -> float | None:
    """A float for JSON and parquet: NaN (not measured) becomes null."""
    value = float(value)
    return value if math.isfinite(value) else None
