"""The GAN's metrics report every part as they go (sampling per class, features of each set, CAS), counted by their
callbacks; given the extractor's train counts, CAS trains on as many generated images per class and the extractor is
its real arm (one classifier trained, not two)."""

from __future__ import annotations

from collections import defaultdict

import pytest
import torch

from synthaug.models.gan.networks import Generator, ModelConfig, Sampler
from synthaug.models.gan.pipeline import EvalData
from synthaug.models.metrics.classifier import ClassifierConfig, accuracy, train_classifier
from synthaug.models.stages import measure_generator

RECIPE = ClassifierConfig(num_classes=3, width=4, feature_dim=16, batch_size=32, steps=6, val_every=3)


@pytest.fixture(scope="module")
def mixed(fashion_small):
    """360 garments of 3 classes, in a random order."""
    x, y = fashion_small
    three = (y < 3).nonzero().squeeze(1)
    order = three[torch.randperm(len(three), generator=torch.Generator().manual_seed(0))]
    return x[order], y[order]


@pytest.fixture(scope="module")
def setup(mixed):
    x, y = mixed
    extractor = train_classifier(x[:60], y[:60], RECIPE, val=(x[60:120], y[60:120])).model
    torch.manual_seed(0)
    sampler = Generator(ModelConfig(resolution=32, channels=1, num_classes=3, width=4, z_dim=8)).eval()
    eval_data = EvalData(reference=(x[60:120], y[60:120]), real=(x[120:180], y[120:180]), test=(x[180:240], y[180:240]))
    return sampler, eval_data, extractor


def _measure(setup, train_counts: list[int] | None):
    sampler, eval_data, extractor = setup
    calls: dict[str, list[tuple[int, int]]] = defaultdict(list)

    def parts(what: str):
        return lambda done, total, elapsed: calls[what].append((done, total))

    names = ("fid", "kid", "pr", "cas")
    metrics = measure_generator(sampler, eval_data, extractor, names, 20, 0, parts, train_counts=train_counts)
    return metrics, calls


def test_measuring_a_generator_reports_sampling_features_and_one_cas_classifier(setup):
    metrics, calls = _measure(setup, train_counts=[30, 20, 10])
    assert {"fid", "kid", "precision", "recall", "cas"} <= set(metrics)
    assert calls["metric samples"] == [(30, 70), (50, 70), (70, 70)]  # 20 per class, 30 of class 0 for CAS
    for which in ("fake", "real", "reference"):
        assert calls[f"features of the {which} images"] == [(60, 60)]
    assert metrics["fid"].n == 60 and metrics["cas"].n == 60
    assert calls["CAS classifier steps"] == [(step, 6) for step in range(1, 7)]  # the generated images' one
    assert calls["CAS test images classified"] == [(60, 120), (120, 120)]
    _, eval_data, extractor = setup
    assert metrics["cas"].floor == accuracy(extractor, *eval_data.test)  # the extractor is the real arm


def test_without_the_extractors_train_counts_cas_trains_both_arms(setup):
    metrics, calls = _measure(setup, train_counts=None)
    assert calls["CAS classifier steps"] == [(step, 12) for step in range(1, 13)]  # two classifiers, one count
    assert 0 < metrics["cas"].floor <= 1 and metrics["cas"].n == 60


class Replay(Sampler):
    """A 'generator' that returns held-out real garments of the asked class, in turn: a perfect generator."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        super().__init__()
        self.config = ModelConfig(resolution=32, channels=1, num_classes=3, width=4, z_dim=8)
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # Sampler.sample reads the device of a parameter
        self.pools = [x[y == c].float() / 127.5 - 1 for c in range(3)]
        self.used = [0, 0, 0]

    def decode(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        c = int(labels[0])
        out = self.pools[c][self.used[c] : self.used[c] + len(z)]
        self.used[c] += len(z)
        return out


def test_a_perfect_generator_scores_near_its_floor_when_the_reference_is_smallest(setup, mixed):
    """FID, KID and PR cut every set to the smallest one's size: the generated images come class by class, so the
    cut must take a random sample of them (a prefix was one class only)."""
    x, y = mixed
    _, eval_data, extractor = setup
    small = EvalData(reference=(x[240:270], y[240:270]), real=eval_data.real)
    metrics = measure_generator(Replay(x[270:], y[270:]), small, extractor, ("fid", "pr"), 25, 0)
    assert metrics["fid"].n == metrics["coverage"].n == 30
    assert metrics["coverage"].value >= 0.9 * metrics["coverage"].floor  # the first 30: 0.79 of it
