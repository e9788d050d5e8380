"""Class-balanced training for long-tailed data: epochs that draw every class equally often, and balanced accuracy
(the mean per-class recall) as the val score a rare class cannot hide in."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthaug.models.metrics.classifier import (
    ClassifierConfig,
    _epoch_order,
    balanced_accuracy,
    per_class_recall,
    train_classifier,
)


def test_a_balanced_epoch_draws_every_class_about_equally_often_and_a_plain_one_is_a_permutation():
    y = torch.tensor([0] * 500 + [1] * 25 + [2] * 25)
    plain = _epoch_order(y, 3, torch.Generator().manual_seed(0), balanced=False)
    assert sorted(plain.tolist()) == list(range(len(y)))
    drawn = torch.cat([_epoch_order(y, 3, torch.Generator().manual_seed(s), balanced=True) for s in range(20)])
    shares = torch.bincount(y[drawn], minlength=3).double() / len(drawn)
    assert torch.allclose(shares, torch.full((3,), 1 / 3, dtype=torch.float64), atol=0.02), shares


def test_balanced_accuracy_is_the_mean_recall_of_the_classes_present():
    predicted = torch.tensor([0, 0, 0, 0, 1, 0, 2, 2])
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2])
    assert per_class_recall(predicted, labels, 4) == [1.0, 0.5, 1.0, None]


def test_a_long_tailed_train_split_trains_with_balanced_sampling_and_is_scored_by_balanced_accuracy(fashion_train):
    """Real garments, 3 classes at 60/6/6 images: the val score kept is balanced accuracy, and it matches a direct
    measurement of the returned model."""
    images, labels = fashion_train
    picks = np.concatenate([np.flatnonzero(labels == c)[:n] for c, n in ((0, 60), (1, 6), (2, 6))])
    val_picks = np.concatenate([np.flatnonzero(labels == c)[100:120] for c in range(3)])

    def tensors(idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.nn.functional.pad(torch.from_numpy(images[idx].copy()).unsqueeze(1), (2, 2, 2, 2))
        return x, torch.from_numpy(labels[idx].astype(np.int64))

    (x, y), val = tensors(picks), tensors(val_picks)
    config = ClassifierConfig(num_classes=3, width=4, feature_dim=8, batch_size=16, steps=30, val_every=10)
    balanced = train_classifier(x, y, ClassifierConfig(**{**config.__dict__, "balanced": True}), val=val)
    assert balanced.val_accuracy == pytest.approx(balanced_accuracy(balanced.model, *val))
    with pytest.raises(ValueError, match="empty"):
        balanced_accuracy(balanced.model, val[0][:0], val[1][:0])
