"""Classification accuracy score (Ravuri & Vinyals 2019): train the classifier on generated images only, test it on
the real test split, next to the same classifier trained on the same number of real images."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from synthaug.core.errors import InvalidInput
from synthaug.models.metrics.classifier import ClassifierConfig, accuracy, train_classifier


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
) -> CasResult:
    """Accuracy on `test` of a classifier trained on `fake` only, and of one trained on as many real images."""
    fake_x, fake_y = fake
    if len(fake_x) < 2:
        raise InvalidInput(f"CAS needs at least 2 generated images, got {len(fake_x)}")
    n = min(len(fake_x), len(real_train[0]))
    fake_idx = _balanced_subset(fake_y, n, config.seed)
    real_idx = _balanced_subset(real_train[1], n, config.seed)
    on_fake = train_classifier(fake_x[fake_idx], fake_y[fake_idx], config)
    on_real = train_classifier(real_train[0][real_idx], real_train[1][real_idx], config)
    cas = accuracy(on_fake.model, *test)
    real_accuracy = accuracy(on_real.model, *test)
    return CasResult(cas, real_accuracy, cas / real_accuracy if real_accuracy > 0 else 0.0, n)
