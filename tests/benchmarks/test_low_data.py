"""low_data's real stand-in for the synthetic set: unlanded Fashion-MNIST images, as many of each class as the set
holds (or a share of them), never one of the landed images, converted like the landed ones."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from synthaug.ingest.demo_data import CLASS_NAMES
from synthaug.tensors.prepare import prepare_image, to_chw

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "low_data.py"


@pytest.fixture(scope="module")
def low_data():
    spec = importlib.util.spec_from_file_location("low_data_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


@pytest.fixture(scope="module")
def fashion(low_data):
    return low_data.load_dataset("fashion-mnist")


def test_real_stand_in_matches_the_set_per_class_and_never_repeats_a_landed_image(low_data, fashion, fashion_train):
    images, labels = fashion_train
    classes = ("Sneaker", "T-shirt_top", "Bag")  # the pipeline's own class order, not CLASS_NAMES'
    set_labels = np.array([0] * 7 + [1] * 3 + [2] * 5)
    landed = (200,) * len(CLASS_NAMES)
    x, y = low_data.unlanded_real(fashion, set_labels, classes, 32, 1, landed)
    assert x.shape == (15, 1, 32, 32) and x.dtype == np.uint8
    assert np.bincount(y).tolist() == [7, 3, 5]
    for k, name in enumerate(classes):
        index = np.flatnonzero(labels == CLASS_NAMES.index(name))
        first = to_chw([prepare_image(images[i], 32, 1, "center_crop")[0] for i in index[:200]], 1, 32)
        mine = x[y == k]
        last = to_chw([prepare_image(images[i], 32, 1, "center_crop")[0] for i in index[-len(mine) :]], 1, 32)
        np.testing.assert_array_equal(mine, last)  # the class's last train images, in dataset order
        landed_bytes = {img.tobytes() for img in first}
        assert not any(img.tobytes() in landed_bytes for img in mine)


def test_a_share_takes_that_part_of_each_class(low_data, fashion):
    set_labels = np.array([0] * 8 + [1] * 4)
    _, y = low_data.unlanded_real(fashion, set_labels, ("Bag", "Coat"), 32, 1, (200,) * len(CLASS_NAMES), share=0.25)
    assert np.bincount(y).tolist() == [2, 1]


def test_asking_for_more_than_the_unlanded_images_stops_with_the_class(low_data, fashion):
    set_labels = np.zeros(100, np.int64)
    with pytest.raises(SystemExit, match="Bag has 0 unlanded"):
        low_data.unlanded_real(fashion, set_labels, ("Bag",), 32, 1, (6000,) * len(CLASS_NAMES))
