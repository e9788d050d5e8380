"""Metric registry (after stylegan2-ada's metric_main): metrics by name over one set of inputs, features computed
once and shared, every value next to its real-vs-real floor."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from synthaug.core.errors import InvalidInput
from synthaug.core.progress import StageProgress
from synthaug.models.metrics.cas import classification_accuracy_score
from synthaug.models.metrics.classifier import ClassifierConfig, SmallCNN, extract_features
from synthaug.models.metrics.fid import MetricValue, fid_with_floor, kid_with_floor
from synthaug.models.metrics.prdc import per_class_precision_recall, precision_recall_with_floor

Images = tuple[torch.Tensor, torch.Tensor]


@dataclass
class MetricInputs:
    """Generated images, a real reference set, a disjoint real set (for the floor), the extractor, optional test set.

    Images are (x, y): x N×C×H×W uint8 or float in [-1, 1], y class indices. `cas` also needs `test` and
    `classifier_config` (its classifiers pick their best state on `reference`) and trains on `cas_fake` (default:
    `fake`); `cas_real_model`, a classifier trained with that config on as many real images, is CAS's real arm
    instead of training one. `progress` reports feature extraction and CAS training and testing as they go.
    """

    extractor: SmallCNN
    fake: Images
    real: Images
    reference: Images
    test: Images | None = None
    classifier_config: ClassifierConfig | None = None
    cas_fake: Images | None = None
    cas_real_model: SmallCNN | None = None
    progress: StageProgress | None = field(default=None, repr=False)
    _features: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    def features(self, which: str) -> torch.Tensor:
        """Extractor features of `fake`, `real` or `reference`, computed once."""
        if which not in self._features:
            report = self.progress(f"features of the {which} images") if self.progress is not None else None
            self._features[which] = extract_features(self.extractor, getattr(self, which)[0], progress=report)
        return self._features[which]


def _fid(inputs: MetricInputs) -> list[MetricValue]:
    return [fid_with_floor(inputs.features("fake"), inputs.features("real"), inputs.features("reference"))]


def _kid(inputs: MetricInputs) -> list[MetricValue]:
    return [kid_with_floor(inputs.features("fake"), inputs.features("real"), inputs.features("reference"))]


def _pr(inputs: MetricInputs) -> list[MetricValue]:
    return precision_recall_with_floor(inputs.features("fake"), inputs.features("real"), inputs.features("reference"))


def _pr_class(inputs: MetricInputs) -> list[MetricValue]:
    def labeled(which: str) -> Images:
        return inputs.features(which), getattr(inputs, which)[1]

    return per_class_precision_recall(labeled("fake"), labeled("real"), labeled("reference"))


def _cas(inputs: MetricInputs) -> list[MetricValue]:
    if inputs.test is None or inputs.classifier_config is None:
        raise InvalidInput("the 'cas' metric needs a real test set and a classifier config in MetricInputs")
    result = classification_accuracy_score(
        inputs.fake if inputs.cas_fake is None else inputs.cas_fake,
        inputs.real,
        inputs.test,
        inputs.classifier_config,
        inputs.progress,
        val=inputs.reference,
        real_model=inputs.cas_real_model,
    )
    extra = {"cas_ratio": result.ratio}
    return [MetricValue("cas", result.cas, result.real_accuracy, result.n_train, extra)]


METRICS: dict[str, Callable[[MetricInputs], list[MetricValue]]] = {
    "fid": _fid,
    "kid": _kid,
    "pr": _pr,
    "pr_class": _pr_class,
    "cas": _cas,
}


def compute_metrics(names: Sequence[str], inputs: MetricInputs) -> dict[str, MetricValue]:
    """Run the named metrics; returns every value by its name (`pr` gives precision, recall, density, coverage;
    `pr_class` the same per class as `class<index>_<metric>`, see `prdc.per_class_table`)."""
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise InvalidInput(f"unknown metrics {unknown}: choose from {sorted(METRICS)}")
    out: dict[str, MetricValue] = {}
    for name in names:
        for value in METRICS[name](inputs):
            out[value.name] = value
    return out
