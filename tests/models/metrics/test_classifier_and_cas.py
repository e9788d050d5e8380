"""The feature-extractor classifier learns real garments, is deterministic by seed, round-trips to disk; CAS of
real images used as "generated" equals real accuracy, and of noise is near chance."""

from __future__ import annotations

import pytest
import torch

from synthaug.models.metrics.cas import classification_accuracy_score
from synthaug.models.metrics.classifier import (
    ClassifierConfig,
    accuracy,
    extract_features,
    load_classifier,
    predict_proba,
    save_classifier,
    train_classifier,
)
from synthaug.models.metrics.registry import MetricInputs, compute_metrics

CONFIG = ClassifierConfig(width=8, feature_dim=32, epochs=3, batch_size=32, lr=1e-2)


@pytest.fixture(scope="module")
def split(fashion_small):
    x, y = fashion_small
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    train, test = order[:900], order[900:]
    return (x[train], y[train]), (x[test], y[test])


@pytest.fixture(scope="module")
def trained(split):
    with torch.random.fork_rng():
        torch.set_num_threads(1)
        return train_classifier(*split[0], CONFIG, val=split[1])


def test_learns_real_garments_far_above_chance(trained):
    assert trained.val_accuracy > 0.5
    assert trained.history[-1]["loss"] < trained.history[0]["loss"]


def test_same_seed_same_model(split, trained):
    torch.set_num_threads(1)
    again = train_classifier(*split[0], CONFIG, val=split[1])
    assert again.val_accuracy == trained.val_accuracy
    for a, b in zip(again.model.parameters(), trained.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_features_probabilities_and_round_trip(tmp_path, split, trained):
    x = split[1][0][:10]
    feats = extract_features(trained.model, x)
    assert feats.shape == (10, 32) and feats.dtype == torch.float64
    assert torch.allclose(predict_proba(trained.model, x).sum(1), torch.ones(10))
    model, val = load_classifier(save_classifier(trained.model, tmp_path / "clf.pt", trained.val_accuracy))
    assert val == trained.val_accuracy and torch.equal(extract_features(model, x), feats)
    (tmp_path / "bad.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="rematerialize feature_extractor"):
        load_classifier(tmp_path / "bad.pt")


def test_wrong_shape_or_labels_are_refused(split):
    with pytest.raises(ValueError, match="N×1×32×32"):
        train_classifier(torch.zeros(4, 3, 32, 32), torch.zeros(4, dtype=torch.long), CONFIG)
    with pytest.raises(ValueError, match="class indices"):
        train_classifier(split[0][0][:4], torch.tensor([0, 1, 2, 10]), CONFIG)


def test_cas_of_real_images_matches_real_accuracy_and_noise_is_near_chance(split):
    (train_x, train_y), test = split
    train_x, train_y = train_x[:450], train_y[:450]
    perfect = classification_accuracy_score((train_x, train_y), (train_x, train_y), test, CONFIG)
    assert perfect.ratio == pytest.approx(1.0) and perfect.n_train == 450
    noise = torch.randint(0, 256, train_x.shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    bad = classification_accuracy_score((noise, train_y), (train_x, train_y), test, CONFIG)
    assert bad.cas < 0.2 and bad.ratio < 0.75


def test_registry_runs_metrics_with_floors_on_shared_features(split, trained):
    (train_x, train_y), (test_x, test_y) = split
    inputs = MetricInputs(
        trained.model, fake=(train_x[:150], train_y[:150]), real=(train_x[150:300], None), reference=(test_x, test_y)
    )
    out = compute_metrics(["fid", "kid", "pr"], inputs)
    assert {"fid", "kid", "precision", "recall"} <= set(out)
    assert out["fid"].n == 150 and out["fid"].floor is not None
    assert accuracy(trained.model, test_x, test_y) == trained.val_accuracy
    with pytest.raises(ValueError, match="unknown metrics"):
        compute_metrics(["is"], inputs)
