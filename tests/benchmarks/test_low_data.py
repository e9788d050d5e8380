"""low_data's images: the real stand-in for the synthetic set (unlanded Fashion-MNIST images, as many of each class as
the set holds or a share of them, never one of the landed images, converted like the landed ones) and a second data
set, scikit-learn's digits, with its own test split, settings and regime names."""

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


def test_digits_keep_the_last_90_of_each_digit_for_testing_and_land_the_rest(low_data):
    """scikit-learn's bundled digits, a data set nobody here made: every one of the 1,797 images is either landable
    or test, never both; the test split is the last 90 of each digit; 17 grey levels become 0..255."""
    from sklearn.datasets import load_digits

    digits = low_data.load_dataset("digits")
    raw = load_digits()
    (train_x, train_y), (test_x, test_y) = digits.train, digits.test
    assert len(train_y) + len(test_y) == len(raw.target) == 1797
    assert np.bincount(test_y).tolist() == [90] * 10
    assert train_x.shape[1:] == (8, 8) and train_x.dtype == np.uint8 and train_x.max() == 255
    for k in range(10):
        index = np.flatnonzero(raw.target == k)
        expected = np.round(raw.images[index] * 255 / 16).astype(np.uint8)
        np.testing.assert_array_equal(test_x[test_y == k], expected[-90:])
        np.testing.assert_array_equal(train_x[train_y == k], expected[:-90])
    ops = digits.run_config["ops"]
    assert ops["clean_images"]["config"]["min_side"] == 8  # 8-pixel images are not too_small
    assert ops["training_tensors"]["config"]["hflip_p"] == 0.0  # a mirrored 2 is not a 2


def test_the_scored_split_is_labeled_in_the_pipeline_class_order(low_data):
    digits = low_data.load_dataset("digits")
    classes = tuple(reversed(digits.class_names))  # the pipeline's order need not be the data set's
    x, y = low_data.scored_split(digits, classes, 32, 1, limit=None)
    assert x.shape == (900, 1, 32, 32)
    assert y.tolist() == [9 - int(label) for label in digits.test[1]]


def test_another_data_set_names_its_regimes_and_merges_its_settings_under_the_user_s(low_data, tmp_path):
    user = tmp_path / "run.yaml"
    user.write_text("ops: {clean_images: {config: {min_side: 6}}}\n")
    args, regimes = low_data.parse_args(["--dataset", "digits", "--regimes", "40", "--run-config", str(user)], "")
    assert list(regimes) == ["digits-per-class-40"]
    ops = low_data.pipeline_run_config(args, regimes["digits-per-class-40"])["ops"]
    assert ops["clean_images"]["config"]["min_side"] == 6
    assert ops["training_tensors"]["config"]["hflip_p"] == 0.0
    assert "train_ratio" in ops["training_tensors"]["config"]
