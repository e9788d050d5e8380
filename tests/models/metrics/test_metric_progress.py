"""Every long metric step reports as it goes, counted by its callbacks (no clock): each classifier step, each batch
of features or predictions, CAS's two trainings as one count then its test pass, and the registry's named parts;
stored metrics come back only for the checkpoint and data they measured."""

from __future__ import annotations

from collections import defaultdict

import pytest

from synthaug.models.metrics.cas import classification_accuracy_score
from synthaug.models.metrics.classifier import (
    ClassifierConfig,
    accuracy,
    extract_features,
    planned_steps,
    train_classifier,
)
from synthaug.models.metrics.fid import MetricValue
from synthaug.models.metrics.registry import MetricInputs, compute_metrics
from synthaug.models.metrics.store import load_metrics, save_metrics

CONFIG = ClassifierConfig(width=4, feature_dim=16, epochs=2, batch_size=32, lr=1e-2)


class Parts:
    """A StageProgress that records every (done, total) per named part."""

    def __init__(self) -> None:
        self.calls: dict[str, list[tuple[int, int]]] = defaultdict(list)

    def __call__(self, what: str):
        return lambda done, total, elapsed: self.calls[what].append((done, total))


@pytest.fixture(scope="module")
def model(fashion_small):
    return train_classifier(*fashion_small, ClassifierConfig(**{**CONFIG.__dict__, "steps": 3})).model


def test_the_classifier_reports_every_step_and_its_planned_total(fashion_small):
    x, y = fashion_small
    seen: list[tuple[int, int]] = []
    result = train_classifier(x[:97], y[:97], CONFIG, progress=lambda d, t, e: seen.append((d, t)))
    assert planned_steps(97, CONFIG) == result.steps == 6  # 3 batches of 32 per epoch; the last image is skipped
    assert seen == [(step, 6) for step in range(1, 7)]


def test_features_and_accuracy_report_each_batch(fashion_small, model):
    x, y = fashion_small
    seen: list[tuple[int, int]] = []
    extract_features(model, x[:50], batch_size=16, progress=lambda d, t, e: seen.append((d, t)))
    assert seen == [(16, 50), (32, 50), (48, 50), (50, 50)]
    seen.clear()
    accuracy(model, x[:20], y[:20], batch_size=16, progress=lambda d, t, e: seen.append((d, t)))
    assert seen == [(16, 20), (20, 20)]


def test_cas_counts_both_trainings_as_one_then_its_test_pass(fashion_small):
    x, y = fashion_small
    parts = Parts()
    result = classification_accuracy_score((x[:64], y[:64]), (x[64:128], y[64:128]), (x[-40:], y[-40:]), CONFIG, parts)
    per_model = planned_steps(result.n_train, CONFIG)
    assert parts.calls["CAS classifier steps"] == [(d, 2 * per_model) for d in range(1, 2 * per_model + 1)]
    assert parts.calls["CAS test images classified"] == [(40, 80), (80, 80)]


def test_the_registry_reports_the_features_of_each_set_once(fashion_small, model):
    x, y = fashion_small
    parts = Parts()
    inputs = MetricInputs(model, fake=(x[:60], y[:60]), real=(x[60:120], y[60:120]), reference=(x[120:180], y[120:180]))
    inputs.progress = parts
    compute_metrics(["fid", "kid", "pr"], inputs)
    assert set(parts.calls) == {f"features of the {which} images" for which in ("fake", "real", "reference")}
    assert all(calls == [(60, 60)] for calls in parts.calls.values())


def test_stored_metrics_come_back_for_their_checkpoint_and_data_only(tmp_path):
    metrics = {"cas": MetricValue("cas", 0.6, 0.8, 200, {"cas_ratio": 0.75}), "fid": MetricValue("fid", 3.0, 1.0, 200)}
    save_metrics(tmp_path, 500, "data-1", metrics)
    stored = load_metrics(tmp_path, 500, "data-1")
    assert stored == {"cas": 0.6, "cas_floor": 0.8, "cas_n": 200, "cas_ratio": 0.75, "fid": 3.0, "fid_floor": 1.0,
                      "fid_n": 200}  # fmt: skip
    assert load_metrics(tmp_path, 1000, "data-1") is None and load_metrics(tmp_path, 500, "data-2") is None
    assert load_metrics(tmp_path / "elsewhere", 500, "data-1") is None
