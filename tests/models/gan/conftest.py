"""Tiny real training data for the GAN tests: Fashion-MNIST padded to 32×32 in [-1, 1], seeded batch order."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import torch
from torch.nn import functional as F

from synthaug.core.compute import torch_threads


@pytest.fixture(scope="session")
def fashion32(fashion_train) -> tuple[torch.Tensor, torch.Tensor]:
    """192 real garments of classes 0-2 (64 each), 1×32×32 in [-1, 1], with labels."""
    images, labels = fashion_train
    picks = [i for c in range(3) for i in (labels == c).nonzero()[0][:64]]
    x = torch.from_numpy(images[picks].copy()).float().div(127.5).sub(1.0).unsqueeze(1)
    return F.pad(x, (2, 2, 2, 2), value=-1.0), torch.from_numpy(labels[picks].astype("int64"))


@pytest.fixture
def make_batches(fashion32) -> Callable[[int], list[tuple[torch.Tensor, torch.Tensor]]]:
    """A deterministic per-epoch batch source: batches of 16 in a seeded order per epoch."""
    x, y = fashion32

    def batches(epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(epoch))
        return [(x[order[i : i + 16]], y[order[i : i + 16]]) for i in range(0, len(x), 16)]

    return batches


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread: tiny models gain nothing from two, and on a shared 2-core machine OpenMP threads that wait
    for a descheduled sibling make every step ~20× slower."""
    with torch_threads(1):
        yield
