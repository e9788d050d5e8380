"""The memorization reference reports its features as they are extracted (it ran ~50 s silent before the first
synthetic image on the demo), counted by its callbacks."""

from __future__ import annotations

from collections import defaultdict

from synthaug.models.metrics.classifier import load_classifier
from synthaug.synthetic.filters import build_reference
from synthaug.synthetic.plan import SyntheticConfig


def test_building_the_reference_reports_train_then_val_features(world, real):
    extractor = load_classifier(world.feature_extractor_path())[0]
    train_x, _ = real("train")
    val_x, _ = real("val")
    calls: dict[str, list[tuple[int, int]]] = defaultdict(list)

    def parts(what: str):
        return lambda done, total, elapsed: calls[what].append((done, total))

    build_reference(train_x, val_x, SyntheticConfig(min_confidence=0.0), extractor, progress=parts)
    assert list(calls) == ["memorization reference: train features", "memorization reference: val features"]
    assert calls["memorization reference: train features"][-1] == (len(train_x), len(train_x))
    assert calls["memorization reference: val features"][-1] == (len(val_x), len(val_x))
