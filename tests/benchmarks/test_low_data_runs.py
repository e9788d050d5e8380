"""low_data's `--mix-with`: synthetic sets of several generators as one arm (c) set. At equal size each generator
gives an equal share of every class (a short one leaves the rest to the others), no image twice; `--mix-union`
takes every image; a run on another landing is refused before anything is read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture()
def runs(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import low_data_runs

    return low_data_runs


def tagged_set(source: int, per_class: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """1×2×2 images whose first pixel names the set and the second the image, `per_class[k]` of class k."""
    labels = np.concatenate([np.full(n, k, np.int64) for k, n in enumerate(per_class)])
    images = np.zeros((len(labels), 1, 2, 2), np.uint8)
    images[:, 0, 0, 0] = source
    images[:, 0, 0, 1] = np.arange(len(labels))
    return images, labels


def origins(images: np.ndarray, labels: np.ndarray, label: int) -> list[int]:
    return sorted(images[labels == label, 0, 0, 0].tolist())


def test_each_generator_gives_an_equal_share_of_each_class_and_no_image_twice(runs):
    first, second = tagged_set(1, [6, 3]), tagged_set(2, [10, 10])
    images, labels = runs.mixed_sets([first, second], num_classes=2)
    assert np.bincount(labels).tolist() == [6, 3]  # as many of each class as the first set holds
    assert origins(images, labels, 0) == [1, 1, 1, 2, 2, 2]
    assert sorted(origins(images, labels, 1)) in ([1, 1, 2], [1, 2, 2])
    pairs = {(int(a), int(b)) for a, b in images[:, 0, 0, :2]}
    assert len(pairs) == len(images)


def test_a_generator_short_of_its_share_leaves_the_rest_to_the_others(runs):
    first, second, third = tagged_set(1, [9]), tagged_set(2, [1]), tagged_set(3, [20])
    images, labels = runs.mixed_sets([first, second, third], num_classes=1)
    assert origins(images, labels, 0).count(2) == 1
    assert len(images) == 9 and origins(images, labels, 0).count(1) + origins(images, labels, 0).count(3) == 8


def test_union_takes_every_image_of_every_set(runs):
    first, second = tagged_set(1, [6, 3]), tagged_set(2, [10, 0])
    _, labels = runs.mixed_sets([first, second], num_classes=2, union=True)
    assert np.bincount(labels).tolist() == [16, 3]


def test_the_mix_is_the_same_for_the_same_seed(runs):
    sets = [tagged_set(1, [50]), tagged_set(2, [50])]
    a, b = runs.mixed_sets(sets, 1, seed=3), runs.mixed_sets(sets, 1, seed=3)
    assert np.array_equal(a[0], b[0])
    assert not np.array_equal(a[0], runs.mixed_sets(sets, 1, seed=4)[0])


def test_a_run_on_another_landing_is_refused_naming_it(runs, tmp_path):
    here, there = tmp_path / "here" / "per-class-100", tmp_path / "there" / "per-class-100"
    for root, landed in ((here, [200] * 10), (there, [100] * 10)):
        root.mkdir(parents=True)
        (root / "landed.json").write_text(json.dumps({"val_share": 0.6, "landed": landed}))
    with pytest.raises(SystemExit, match=r"there/per-class-100 is not a run of per-class-100 on the same landing"):
        runs.other_sets([str(tmp_path / "there")], "per-class-100", here)
