"""Shared fixtures: real image batches from Fashion-MNIST, and real (temporary) Dagster instances."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from dagster import DagsterInstance, instance_for_test

from synthaug.ingest.demo_data import CLASS_NAMES, load_fashion_mnist
from tests.unit_fixtures import (  # noqa: F401 - fixtures of the stage unit tests, shared by every folder
    deadline,
    hostile_batch,
    hostile_batch_writer,
    image_bytes,
    layout,
    tree_snapshot,
)

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


@pytest.fixture(scope="session")
def fashion_train() -> tuple[np.ndarray, np.ndarray]:
    """The real Fashion-MNIST train split (Debian package dataset-fashion-mnist)."""
    return load_fashion_mnist("train")


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    """An empty landing folder."""
    path = tmp_path / "landing"
    path.mkdir()
    return path


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def make_batch(landing: Path, fashion_train) -> Callable[..., Path]:
    """Write a batch of real Fashion-MNIST PNGs: `<landing>/<name>/<class>/img-NNN.png`."""
    images, labels = fashion_train

    def _make(name: str, per_class: int = 3, classes: int = 3, ready: bool = True, offset: int = 0) -> Path:
        batch = landing / name
        for c in range(classes):
            folder = batch / CLASS_NAMES[c]
            folder.mkdir(parents=True, exist_ok=True)
            for j, i in enumerate(np.flatnonzero(labels == c)[offset : offset + per_class]):
                cv2.imwrite(str(folder / f"img-{j:03d}.png"), images[i])
        if ready:
            (batch / "_READY").touch()
        return batch

    return _make


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    """A real Dagster instance with SQLite storage in a temporary folder."""
    with instance_for_test() as inst:
        yield inst
