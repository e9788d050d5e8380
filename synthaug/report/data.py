"""What the augmentation report trains and tests on: its configuration, and the real and synthetic images of every
batch as uint8 tensors."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from synthaug.core.classes import CLASS_BALANCE, balanced_sampling, long_tail
from synthaug.core.errors import InvalidInput
from synthaug.core.layout import DataLayout
from synthaug.core.ranges import check_fields, one_of, ranged
from synthaug.tensors.norm_stats import NormStats
from synthaug.tensors.readback import flips_allowed, read_split

Images = tuple[torch.Tensor, torch.Tensor]
SYNTHETIC_LABELS = ("hard", "soft")
SYNTHETIC_SCHEDULES = ("mixed", "pretrain")
SYNTHETIC_NORMS = ("shared", "separate")


def class_counts(train_labels: torch.Tensor, num_classes: int) -> list[int]:
    """Train images per class index."""
    return torch.bincount(train_labels.long(), minlength=num_classes).tolist()


def rare_classes(train_labels: torch.Tensor, num_classes: int) -> list[int]:
    """Classes of the long tail of the real train split (`synthaug.core.classes.long_tail`)."""
    return long_tail(class_counts(train_labels, num_classes))


@dataclass(frozen=True)
class ReportConfig:
    """How the arms are trained and how the verdict is reached; invalid values raise ValueError naming the field."""

    seeds: int = ranged(3, low=2, integer=True)
    first_seed: int = 0
    steps: int | None = ranged(None, low=1, optional=True, note="from epochs")
    epochs: float = ranged(6.0, low=0, low_open=True)
    min_steps: int = ranged(200, low=1, integer=True)
    batch_size: int = ranged(64, low=2, integer=True)
    width: int = ranged(16, low=1, integer=True)
    lr: float = ranged(5e-3, low=0, low_open=True)
    evaluations: int = ranged(8, low=1, integer=True)
    synthetic_per_batch: int = ranged(32, low=0)
    synthetic_weight: float = ranged(0.3, low=0)
    require_val_ci: bool = True
    cas: bool = True
    confidence: float = ranged(0.95, 0, 1, low_open=True, high_open=True)
    classic_shares: tuple[float, ...] = (1.0, 0.0)
    classic_optional: bool = True
    baseline_tolerance: float = ranged(0.01, 0, 1, high_open=True)
    class_balance: str = one_of("auto", CLASS_BALANCE)
    synthetic_labels: str = one_of("hard", SYNTHETIC_LABELS)
    soft_temperature: float = ranged(2.0, low=0, low_open=True)
    synthetic_weights: tuple[float, ...] = ()
    synthetic_shares: tuple[int, ...] = ()
    synthetic_schedule: str = one_of("mixed", SYNTHETIC_SCHEDULES)
    pretrain_share: float = ranged(0.3, 0, 1, low_open=True, high_open=True)
    synthetic_norm: str = one_of("shared", SYNTHETIC_NORMS)
    reuse_baseline_runs: bool = True

    def __post_init__(self) -> None:
        check_fields(self)
        if not self.classic_shares or not all(0 <= share <= 1 for share in self.classic_shares):
            raise InvalidInput(
                f"invalid ReportConfig: classic_shares must be shares in [0, 1], got {list(self.classic_shares)}"
            )
        object.__setattr__(self, "classic_shares", tuple(float(share) for share in self.classic_shares))
        object.__setattr__(self, "synthetic_weights", tuple(float(w) for w in self.synthetic_weights))
        object.__setattr__(self, "synthetic_shares", tuple(self.synthetic_shares))
        if any(w < 0 for w in self.synthetic_weights):
            raise InvalidInput(
                f"invalid ReportConfig: synthetic_weights must not be negative, got {list(self.synthetic_weights)}"
            )
        if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in self.synthetic_shares):
            raise InvalidInput(
                "invalid ReportConfig: synthetic_shares must be non-negative integers, got "
                f"{list(self.synthetic_shares)}"
            )
        if self.synthetic_labels == "soft" and 0 in {share for _, share in self.synthetic_candidates()}:
            raise InvalidInput(
                "invalid ReportConfig: synthetic_labels 'soft' needs synthetic_per_batch (and every synthetic_shares "
                "value) > 0: pooled synthetic images (0) are trained with the real images' hard labels"
            )

    def synthetic_candidates(self) -> list[tuple[float, int]]:
        """Every (synthetic weight, synthetic images per batch) arm (c) is trained with: `synthetic_weights` ×
        `synthetic_shares`, each defaulting to the single `synthetic_weight` / `synthetic_per_batch`."""
        weights = self.synthetic_weights or (self.synthetic_weight,)
        shares = self.synthetic_shares or (self.synthetic_per_batch,)
        return [(weight, share) for share in dict.fromkeys(shares) for weight in dict.fromkeys(weights)]

    @property
    def held_out(self) -> bool:
        """True when arm (c) has several candidates: they are chosen on one half of val, reported on the other."""
        return len(self.synthetic_candidates()) > 1

    def balanced_for(self, train_labels: torch.Tensor, num_classes: int) -> bool:
        """Whether every arm samples classes equally and is scored by balanced accuracy: `on`, `off`, or `auto` = when
        the largest class of the real train split has at least IMBALANCED times the images of the smallest."""
        return balanced_sampling(self.class_balance, class_counts(train_labels, num_classes))

    def steps_for(self, num_train: int) -> int:
        """Optimizer steps of every arm: `steps`, or `epochs` passes over the original real train split (at least
        `min_steps`). The same for all arms, so more data never means more training."""
        if self.steps is not None:
            return self.steps
        return max(self.min_steps, math.ceil(self.epochs * num_train / self.batch_size))

    def pretrain_steps(self, steps: int) -> int:
        """Of an arm's `steps`, how many arm (c) spends on synthetic images alone before fine-tuning on real ones
        (`synthetic_schedule` "pretrain": `pretrain_share` of them, at least 1 and leaving 1; else 0)."""
        if self.synthetic_schedule != "pretrain":
            return 0
        return min(steps - 1, max(1, round(self.pretrain_share * steps)))


@dataclass(frozen=True)
class ReportData:
    """Everything the arms train and test on: uint8 N×C×H×W images with int64 label indices into `classes`.

    `train` is the original real train split, `train_aug` its classic-augmentation copies, `synthetic` the
    accepted synthetic images; `test` may come from anywhere (the pipeline's test split, or an official one).
    `synthetic_soft`: the feature extractor's tempered class probabilities of each synthetic image (float N×classes),
    when arm (c) trains on soft labels (`report.soft.with_soft_targets`). `val_select`: when set, the half of the
    val split every choice is made on (checkpoints, shares, candidates), `val` then being the other half, the one
    reported (`report.choice.split_val`)."""

    classes: tuple[str, ...]
    train: Images
    train_aug: Images
    val: Images
    test: Images
    synthetic: Images
    flip: bool = True
    test_source: str = "the pipeline's real test split"
    synthetic_soft: torch.Tensor | None = None
    val_select: Images | None = None

    @property
    def labeled(self) -> bool:
        """True when there are at least 2 classes and labeled train, val and test images to train and measure."""
        return len(self.classes) >= 2 and all(len(part[0]) >= 2 for part in (self.train, self.val, self.test))

    def sizes(self) -> dict[str, int]:
        """Images per part."""
        parts = ("train", "train_aug", "val", "test", "synthetic")
        parts += ("val_select",) if self.val_select is not None else ()
        return {name: int(len(getattr(self, name)[0])) for name in parts}


def load_report_data(
    layout: DataLayout,
    stats: NormStats,
    synthetic: tuple[np.ndarray, np.ndarray],
    *,
    test: tuple[np.ndarray, np.ndarray] | None = None,
    test_source: str | None = None,
) -> ReportData:
    """The real train, train_aug, val (and, unless `test` is given, test) streams of every batch, with the
    accepted synthetic images (uint8 N×C×H×W, label indices into `stats.classes`; unlabeled ones are dropped)."""
    shape = (stats.channels, stats.size, stats.size)
    syn_x, syn_y = np.asarray(synthetic[0]), np.asarray(synthetic[1]).astype(np.int64)
    if len(syn_x) and tuple(syn_x.shape[1:]) != shape:
        raise InvalidInput(
            f"synthetic images are {tuple(syn_x.shape[1:])}, the training tensors {shape}: "
            "rematerialize synthetic_images from the current gan_checkpoint"
        )
    if len(syn_y) and syn_y.max(initial=-1) >= len(stats.classes):
        raise InvalidInput(
            f"synthetic labels go up to {int(syn_y.max())} but normalization_stats has {len(stats.classes)} classes: "
            "rematerialize synthetic_images"
        )
    keep = syn_y >= 0
    parts = {s: read_split(layout, stats, s, labeled_only=True) for s in ("train", "train_aug", "val")}
    parts["test"] = test if test is not None else read_split(layout, stats, "test", labeled_only=True)

    def tensors(pair: tuple[np.ndarray, np.ndarray]) -> Images:
        return torch.from_numpy(np.ascontiguousarray(pair[0])), torch.from_numpy(np.asarray(pair[1], np.int64))

    return ReportData(
        classes=tuple(stats.classes),
        train=tensors(parts["train"]),
        train_aug=tensors(parts["train_aug"]),
        val=tensors(parts["val"]),
        test=tensors(parts["test"]),
        synthetic=tensors((syn_x[keep], syn_y[keep])),
        flip=flips_allowed(layout, stats.batches),
        test_source=test_source or "the pipeline's real test split",
    )
