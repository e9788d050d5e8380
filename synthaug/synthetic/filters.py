"""Distances and filters, pure (arrays in, scores out): nearest real train image in pixel and feature space, the
real-vs-real reference scale the memorization threshold is relative to, the class-confidence check, and the
reject reasons they assign."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from synthaug.core.errors import InvalidInput
from synthaug.core.progress import ProgressFn, StageProgress
from synthaug.models.metrics.classifier import SmallCNN, extract_features
from synthaug.synthetic.plan import MAX_REFERENCE_IMAGES, MIN_REFERENCE_IMAGES, SyntheticConfig

LOW_CONFIDENCE = "low_confidence"
MEMORIZED = "memorized"
NOT_SELECTED = "not_selected"
REJECT_REASONS = (MEMORIZED, LOW_CONFIDENCE, NOT_SELECTED)


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


def _features(
    extractor: SmallCNN,
    pixels: np.ndarray,
    affine: tuple[np.ndarray, np.ndarray] | None,
    progress: ProgressFn | None = None,
) -> np.ndarray:
    """The extractor's penultimate features (float64) of uint8 images, normalized as it was trained."""
    return extract_features(extractor, to_model_input(pixels, affine), progress=progress).numpy()


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
    progress: StageProgress | None = None,
) -> MemorizationReference:
    """Features of the real train images and the real-vs-real distance scale: real val images (`real`, at most
    `MAX_REFERENCE_IMAGES` of them) to their nearest train image, or leave-one-out within the train images when
    fewer than `MIN_REFERENCE_IMAGES` val images exist; `progress` reports the features as they are extracted."""
    if len(train) < 2:
        raise InvalidInput(
            f"the memorization check needs at least 2 real train images, got {len(train)}: land more images"
        )
    rng = np.random.default_rng(config.seed)
    report = progress if progress is not None else (lambda what: None)
    train_features = (
        _features(extractor, train, affine, report("memorization reference: train features"))
        if extractor is not None
        else None
    )
    if real is not None and len(real) >= MIN_REFERENCE_IMAGES:
        pick = np.sort(rng.permutation(len(real))[:MAX_REFERENCE_IMAGES])
        queries, source, exclude = real[pick], "val", False
        query_features = (
            _features(extractor, queries, affine, report("memorization reference: val features"))
            if extractor is not None
            else None
        )
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
    """Per-candidate filter scores and decisions (NaN scores: not measured); `features` are the extractor's (None
    without one); `not_selected` marks candidates that passed both filters but were left out by the selection."""

    confidence: np.ndarray
    nn_pixel_distance: np.ndarray
    nn_feature_distance: np.ndarray
    nn_train_row: np.ndarray
    low_confidence: np.ndarray
    memorized: np.ndarray
    features: np.ndarray | None = None
    not_selected: np.ndarray | None = None

    @property
    def passed(self) -> np.ndarray:
        """Candidates that pass both filters."""
        return ~(self.low_confidence | self.memorized)

    @property
    def accepted(self) -> np.ndarray:
        """Candidates that pass both filters and were selected."""
        return self.passed if self.not_selected is None else self.passed & ~self.not_selected

    @property
    def reasons(self) -> list[str | None]:
        """Why each candidate was rejected: "memorized" first (the more serious), then "low_confidence", then
        "not_selected"."""
        left_out = self.not_selected if self.not_selected is not None else np.zeros(len(self.memorized), bool)
        return [
            MEMORIZED if m else LOW_CONFIDENCE if c else NOT_SELECTED if s else None
            for m, c, s in zip(self.memorized.tolist(), self.low_confidence.tolist(), left_out.tolist(), strict=True)
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
    scored = config.min_confidence > 0 or config.selection == "boundary"
    if features is not None and scored and labeled.any():
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
    return FilterScores(confidence, pixel, feature, row, low_confidence, memorized, features)
