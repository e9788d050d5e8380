"""Fixtures of the report tests: one torch thread, and disjoint real Fashion-MNIST parts of 3 classes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthaug.core.compute import torch_threads
from tests.report.helpers import CLASSES


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models on a shared 2-core machine: one torch thread is faster and deterministic."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def garments(fashion_train) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Disjoint real Fashion-MNIST parts of 3 classes, padded to 1×32×32: train, its flipped copies as the
    'classic' stream, val, test, and other real garments standing in for a synthetic set."""
    images, labels = fashion_train
    cuts = {"train": (0, 30), "val": (30, 50), "test": (50, 90), "synthetic": (90, 120)}
    parts = {}
    for name, (lo, hi) in cuts.items():
        picks = np.concatenate([np.flatnonzero(labels == c)[lo:hi] for c in range(len(CLASSES))])
        x = torch.nn.functional.pad(torch.from_numpy(images[picks].copy()).unsqueeze(1), (2, 2, 2, 2))
        parts[name] = (x, torch.from_numpy(labels[picks].astype(np.int64)))
    parts["train_aug"] = (parts["train"][0].flip(3), parts["train"][1].clone())
    return parts
