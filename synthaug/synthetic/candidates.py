"""The candidates of one generation: drawn from the generator per class in rounds until each class has its planned
count, filtered, written as PNGs under `images/` or `rejected/` with their manifest rows, then summed up for
`meta.json` and the two pictures."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from synthaug.core.errors import InvalidInput
from synthaug.core.progress import Progress
from synthaug.models.gan.sampling import sample_grid_png, sample_per_class
from synthaug.models.metrics.classifier import SmallCNN
from synthaug.models.stages import data_version as stats_data_version
from synthaug.synthetic.anchors import Anchors, draw_around
from synthaug.synthetic.filters import (
    LOW_CONFIDENCE,
    MEMORIZED,
    NOT_SELECTED,
    REJECT_REASONS,
    FilterScores,
    MemorizationReference,
    filter_candidates,
    from_model_output,
)
from synthaug.synthetic.plan import SyntheticConfig
from synthaug.synthetic.readback import FORMAT_VERSION, IMAGES_DIR, REJECTED_DIR, UNLABELED_FOLDER
from synthaug.synthetic.select import CoverageState, boundary_choice
from synthaug.tensors.config import UNLABELED
from synthaug.tensors.norm_stats import NormStats

GRID_PER_CLASS = 8


def derive_seed(seed: int, round_index: int, label: int) -> int:
    """The sampling seed of one class in one round: independent streams for every (seed, round, class)."""
    return int(np.random.SeedSequence([seed, round_index, label + 1]).generate_state(1, np.uint32)[0])


def _png_bytes(pixels: np.ndarray) -> bytes:
    """C×H×W uint8 → PNG bytes (grey or RGB)."""
    image = pixels[0] if pixels.shape[0] == 1 else cv2.cvtColor(pixels.transpose(1, 2, 0), cv2.COLOR_RGB2BGR)
    ok, buffer = cv2.imencode(".png", image)
    if not ok:
        raise InvalidInput("could not encode a synthetic image as PNG")
    return buffer.tobytes()


def _display(pixels: list[np.ndarray], shape: tuple[int, ...]) -> torch.Tensor:
    """uint8 C×H×W images → [-1, 1] floats for `sample_grid_png` (display only)."""
    stacked = np.stack(pixels) if pixels else np.empty((0, *shape), np.uint8)
    return torch.from_numpy(stacked).float().div(127.5).sub(1.0)


@dataclass
class CandidateRun:
    """The state of one generation while it is sampled: manifest rows, counts and a few images for the pictures."""

    config: SyntheticConfig
    plan: dict[str, int]
    conditional: bool
    stats: NormStats
    checkpoint_version: str
    checkpoint_step: int
    folder: Path
    train_labels: np.ndarray | None = None
    rows: list[dict] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    flags: dict[str, int] = field(default_factory=lambda: {"confidence_failed": 0, "memorized_flagged": 0})
    shown: list[tuple[int, np.ndarray]] = field(default_factory=list)
    shown_rejected: list[tuple[int, np.ndarray, int]] = field(default_factory=list)
    coverage: dict[int, CoverageState] = field(default_factory=dict)
    anchors: Anchors | None = None

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
        accepted_total, pool = 0, self.config.pool
        for round_index in range(self.config.max_rounds):
            for name, planned in self.plan.items():
                counts = self.counts[_display_name(name)]
                missing = planned - counts["accepted"]
                if missing <= 0:
                    continue
                passing = counts["accepted"] + counts[NOT_SELECTED]
                rate = passing / counts["candidates"] if counts["candidates"] else 1.0
                budget = math.ceil(self.config.max_candidates * pool * planned) - counts["candidates"]
                draw = min(math.ceil(missing * pool * self.config.oversample / max(rate, 1 / 100)), budget)
                if draw <= 0:
                    continue
                label = self.label_of(name)
                seed = derive_seed(self.config.seed, round_index, label)
                if self.anchors is not None:
                    images, anchor_rows = draw_around(
                        sampler, self.anchors, label, draw, self.config.anchor_spread, seed
                    )
                else:
                    images, _ = sample_per_class(
                        sampler,
                        draw,
                        classes=[label] if self.conditional else None,
                        seed=seed,
                        latent_scale=self.config.latent_scale,
                    )
                    anchor_rows = np.full(draw, -1)
                pixels = from_model_output(images, affine)
                labels = np.full(draw, label)
                scores = filter_candidates(pixels, labels, reference, self.config, extractor, affine, device)
                passed = np.flatnonzero(scores.passed)
                if self.config.selection == "first":
                    keep = int(passed[missing - 1]) + 1 if len(passed) >= missing else draw
                else:
                    self._select(label, scores, passed, missing, reference)
                    keep = draw
                self._write(name, label, pixels[:keep], scores, keep, round_index, seed, anchor_rows)
                accepted_total += min(len(passed), missing)
                reporter.update(accepted_total)

    def _select(
        self, label: int, scores: FilterScores, passed: np.ndarray, missing: int, reference: MemorizationReference
    ) -> None:
        """Mark the passing candidates the selection leaves out (`scores.not_selected`), keeping `missing` of them."""
        if self.config.selection == "boundary":
            chosen = passed[boundary_choice(scores.confidence[passed], missing)]
        else:
            if label not in self.coverage:
                own = reference.train_features
                if label >= 0 and self.train_labels is not None:
                    own = own[self.train_labels == label]
                self.coverage[label] = CoverageState(own, seed=self.config.seed)
            chosen = passed[self.coverage[label].choose(scores.features[passed], missing)]
        scores.not_selected = np.ones(len(scores.passed), bool)
        scores.not_selected[chosen] = False

    def _write(
        self,
        name: str,
        label: int,
        pixels: np.ndarray,
        scores: FilterScores,
        keep: int,
        round_index: int,
        seed: int,
        anchor_rows: np.ndarray,
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
                    "anchor_train_row": int(anchor_rows[i]),
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
                shown = sum(1 for c, _, _ in self.shown_rejected if c == label)
                if reason != NOT_SELECTED and shown < GRID_PER_CLASS:
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
                "rejected": sum(counts[reason] for reason in REJECT_REASONS),
                "shortfall": max(counts["planned"] - counts["accepted"], 0),
            }
        short = [f"{k} {v['accepted']:,} of {v['planned']:,}" for k, v in per_class.items() if v["shortfall"]]
        if short:
            notes.append(
                f"classes short of their planned count (accepted of planned: {', '.join(short)}) after "
                f"{self.config.max_rounds} rounds or {self.config.max_candidates:g} × the plan in candidates: the "
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
            "not_selected": sum(v[NOT_SELECTED] for v in per_class.values()),
            "shortfall": sum(v["shortfall"] for v in per_class.values()),
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
