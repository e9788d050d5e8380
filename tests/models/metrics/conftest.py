"""Metrics tests run torch on one thread (tiny models; a shared 2-core machine makes two threads slower)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from synthaug.core.compute import torch_threads


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread for every metrics test."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="session")
def fashion_small(fashion_train) -> tuple[torch.Tensor, torch.Tensor]:
    """1,200 real garments (120 per class), uint8 1×28×28 → padded 1×32×32, with labels."""
    images, labels = fashion_train
    picks = [i for c in range(10) for i in (labels == c).nonzero()[0][:120]]
    x = torch.from_numpy(images[picks].copy()).unsqueeze(1)
    return torch.nn.functional.pad(x, (2, 2, 2, 2)), torch.from_numpy(labels[picks].astype("int64"))
