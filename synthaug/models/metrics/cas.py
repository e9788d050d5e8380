"""Classification accuracy score (Ravuri & Vinyals 2019): train the classifier on generated images only, test it on
the real test split, next to the same classifier trained on the same number of real images."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from synthaug.core.errors import InvalidInput
from synthaug.core.progress import StageProgress, part
from synthaug.models.metrics.classifier import (
    ClassifierConfig,
    SmallCNN,
    accuracy,
    planned_steps,
    train_classifier,
)


@dataclass(frozen=True)
class CasResult:
    """CAS, the real-data accuracy at the same training size, their ratio, and that size."""

    cas: float
    real_accuracy: float
    ratio: float
    n_train: int

    def as_dict(self) -> dict[str, float | int]:
        """Flat dict for metadata."""
        return {
            "cas": self.cas,
            "cas_real_accuracy": self.real_accuracy,
            "cas_ratio": self.ratio,
            "cas_n": self.n_train,
        }


def _balanced_subset(y: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Indices of n items spread over classes as evenly as the labels allow, in a seeded random order."""
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    rank = torch.empty_like(order)
    shuffled = y[order]
    for c in shuffled.unique():
        members = (shuffled == c).nonzero().squeeze(1)
        rank[members] = torch.arange(len(members))
    return order[torch.argsort(rank, stable=True)[:n]]


def classification_accuracy_score(
    fake: tuple[torch.Tensor, torch.Tensor],
    real_train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    config: ClassifierConfig,
    progress: StageProgress | None = None,
    *,
    val: tuple[torch.Tensor, torch.Tensor] | None = None,
    real_model: SmallCNN | None = None,
) -> CasResult:
    """Accuracy on `test` of a classifier trained on `fake` only, and of one trained on as many real images.

    `real_model`: a classifier already trained with `config` on as many real images (the feature extractor);
    its accuracy is the real one, so only the classifier on `fake` is trained. `val` (real) picks each training's
    best state when `config.val_every` is set. `progress` gets the optimizer steps of the classifiers as one count,
    then the test images classified."""
    fake_x, fake_y = fake
    if len(fake_x) < 2:
        raise InvalidInput(f"CAS needs at least 2 generated images, got {len(fake_x)}")
    n = len(fake_x) if real_model is not None else min(len(fake_x), len(real_train[0]))
    fake_idx = _balanced_subset(fake_y, n, config.seed)
    steps = progress("CAS classifier steps") if progress is not None else None
    per_model, start = planned_steps(n, config), time.monotonic()
    total = per_model * (1 if real_model is not None else 2)
    on_fake = train_classifier(
        fake_x[fake_idx], fake_y[fake_idx], config, val=val, progress=part(steps, 0, total, start)
    ).model
    if real_model is None:
        real_idx = _balanced_subset(real_train[1], n, config.seed)
        real_x, real_y = real_train[0][real_idx], real_train[1][real_idx]
        real_model = train_classifier(
            real_x, real_y, config, val=val, progress=part(steps, per_model, total, start)
        ).model
    tested = progress("CAS test images classified") if progress is not None else None
    start = time.monotonic()
    cas = accuracy(on_fake, *test, progress=part(tested, 0, 2 * len(test[0]), start))
    real_accuracy = accuracy(real_model, *test, progress=part(tested, len(test[0]), 2 * len(test[0]), start))
    return CasResult(cas, real_accuracy, cas / real_accuracy if real_accuracy > 0 else 0.0, n)
