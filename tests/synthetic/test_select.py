"""Choosing among the candidates that passed the filters: coverage of the real images in the extractor's space
(a collapsed generator's near-copies lose to distinct garments), the boundary choice, and both through
`generate_synthetic` on real garments."""

from __future__ import annotations

import numpy as np
import pytest

from synthaug.models.metrics.classifier import extract_features, load_classifier
from synthaug.synthetic.filters import NOT_SELECTED, to_model_input
from synthaug.synthetic.generate import generate_synthetic
from synthaug.synthetic.plan import SyntheticConfig
from synthaug.synthetic.readback import read_synthetic
from synthaug.synthetic.select import CoverageState, boundary_choice
from tests.synthetic.helpers import CLASSES, TRAIN


def _features(layout, pixels: np.ndarray) -> np.ndarray:
    extractor, _ = load_classifier(layout.feature_extractor_path())
    return extract_features(extractor, to_model_input(pixels)).numpy()


def test_coverage_prefers_distinct_garments_to_near_copies_of_one(world, real):
    train_x, train_y = real("train")
    val_x, val_y = real("val")
    own_train, own_val = train_x[train_y == 0], val_x[val_y == 0]
    rng = np.random.default_rng(0)
    noise = rng.integers(-6, 7, size=(20, *own_train.shape[1:]))
    copies = np.clip(own_train[:1].astype(int) + noise, 0, 255).astype(np.uint8)  # a collapsed generator
    candidates = np.concatenate([copies, own_val[:10]])
    state = CoverageState(_features(world, own_train))
    chosen = state.choose(_features(world, candidates), 10)
    assert len(chosen) == 10 and len(set(chosen.tolist())) == 10
    distinct = int((chosen >= 20).sum())
    assert distinct >= 7, f"only {distinct} of 10 chosen are distinct garments: {chosen}"
    assert state.covered.sum() > 0


def test_coverage_spreads_over_the_real_clusters_in_layers_and_takes_outliers_last():
    rng = np.random.default_rng(1)
    real = np.concatenate([rng.normal(0, 0.1, (30, 4)), rng.normal(5, 0.1, (30, 4))])
    near_a = rng.normal(0, 0.05, (10, 4))
    near_b = rng.normal(5, 0.05, (2, 4))
    outlier = np.full((1, 4), 50.0)
    candidates = np.concatenate([outlier, near_a, near_b])
    state = CoverageState(real)
    chosen = state.choose(candidates, 4)
    assert 0 not in chosen  # the outlier covers no real image
    assert sorted(c >= 11 for c in chosen) == [False, False, True, True]  # 2 from each cluster
    assert 0 not in CoverageState(real).choose(candidates, 12)  # every in-distribution candidate comes first
    assert list(CoverageState(real).choose(np.concatenate([outlier, outlier + 1]), 2)) == [0, 1]


def test_many_candidates_are_chosen_from_in_chunks_with_the_same_count(monkeypatch):
    rng = np.random.default_rng(2)
    real, candidates = rng.normal(0, 1, (40, 3)), rng.normal(0, 1, (50, 3))
    monkeypatch.setattr("synthaug.synthetic.select.MAX_CHUNK", 16)
    chosen = CoverageState(real).choose(candidates, 20)
    assert len(chosen) == len(set(chosen.tolist())) == 20 and chosen.max() < 50
    assert list(chosen) == sorted(chosen)


def test_boundary_takes_the_least_confident():
    confidence = np.array([0.99, 0.55, 0.8, 0.51, np.nan])
    assert list(boundary_choice(confidence, 2)) == [1, 3]


@pytest.mark.parametrize("selection", ["coverage", "boundary"])
def test_generate_keeps_the_planned_count_and_records_who_was_left_out(fresh, selection):
    config = SyntheticConfig(ratio=0.25, min_confidence=0.3, selection=selection, selection_pool=3, seed=3)
    summary = generate_synthetic(fresh, config)
    manifest = read_synthetic(fresh).manifest
    left_out = manifest[manifest["reject_reason"] == NOT_SELECTED]
    assert summary.totals["not_selected"] == len(left_out) > 0
    assert left_out["path"].str.startswith(f"rejected/{NOT_SELECTED}/").all()
    for name in CLASSES:
        counts = summary.per_class[name]
        assert counts["accepted"] + counts["shortfall"] == counts["planned"] == TRAIN // 4
        assert counts["not_selected"] == int((left_out["class_name"] == name).sum())
    if selection == "boundary":
        for _, draw in manifest[manifest["reject_reason"].isna() | (manifest["reject_reason"] == NOT_SELECTED)].groupby(
            ["class_name", "round"]
        ):
            kept, dropped = draw[draw["accepted"]], draw[~draw["accepted"]]
            if len(kept) and len(dropped):
                assert kept["confidence"].max() <= dropped["confidence"].min()


def test_coverage_without_the_extractor_is_refused_before_sampling(fresh):
    fresh.feature_extractor_path().unlink()
    with pytest.raises(ValueError, match="selection 'coverage' needs the feature extractor"):
        generate_synthetic(fresh, SyntheticConfig(min_confidence=0, selection="coverage"))
    assert not fresh.synthetic_pointer().exists()
