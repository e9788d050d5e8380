"""Fixtures of the synthetic-set tests: one torch thread, and a labeled data root (tensors, statistics, a tiny
extractor and GAN) built once for the package, with private copies for tests that publish."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from synthaug.core.compute import torch_threads
from synthaug.core.layout import DataLayout
from synthaug.models.metrics.classifier import ClassifierConfig, save_classifier, train_classifier
from synthaug.tensors.norm_stats import compute_normalization_stats, write_normalization_stats
from synthaug.tensors.readback import read_split
from tests.synthetic.helpers import CLASSES, FASHION_LABEL, TRAIN, VAL, garments, train_gan, write_tensors


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread: tiny models on a shared 2-core machine."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="package")
def world(tmp_path_factory, fashion_train) -> DataLayout:
    """A labeled data root: 3 classes × 60 real train and 12 val garments, statistics, a tiny trained extractor
    (2 epochs) and a tiny GAN trained 3 steps."""
    layout = DataLayout(tmp_path_factory.mktemp("synthetic-world"))
    split = {}
    for stream, start, count in (("train", 0, TRAIN), ("val", TRAIN, VAL)):
        xs = [garments(fashion_train, FASHION_LABEL[c], start, count) for c in CLASSES]
        split[stream] = (np.concatenate(xs), np.repeat(np.arange(len(CLASSES)), count))
    write_tensors(layout, "b1", split, CLASSES)
    stats = compute_normalization_stats(layout, ["b1"])
    write_normalization_stats(layout, stats)
    with torch_threads(1):
        x, y = split["train"]
        config = ClassifierConfig(num_classes=3, width=8, feature_dim=32, epochs=10, batch_size=32, seed=0)
        result = train_classifier(torch.from_numpy(x), torch.from_numpy(y.astype(np.int64)), config)
        save_classifier(result.model, layout.feature_extractor_path())
        train_gan(layout, x, y, num_classes=3)
    return layout


@pytest.fixture
def fresh(world: DataLayout, tmp_path: Path) -> DataLayout:
    """A private copy of the labeled data root, so each test publishes its own synthetic sets."""
    root = tmp_path / "data"
    shutil.copytree(world.root, root)
    return DataLayout(root)


@pytest.fixture
def real(world: DataLayout) -> Callable[[str], tuple[np.ndarray, np.ndarray]]:
    """One split of the labeled data root as stored (uint8 pixels, label indices), through `read_split`."""
    stats = compute_normalization_stats(world, ["b1"])
    return lambda split: read_split(world, stats, split)
