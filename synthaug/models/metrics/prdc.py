"""k-NN precision and recall (Kynkäänniemi et al. 2019) with density and coverage (Naeem et al. 2020): does each
generated image fall inside the real manifold (precision), and does the generated manifold cover the real images
(recall)? Manifolds are unions of balls reaching each point's k-th nearest neighbour."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

import torch

from synthaug.core.errors import InvalidInput
from synthaug.models.metrics.fid import MetricValue, same_size

Images = tuple[torch.Tensor, torch.Tensor]


def _kth_radius(x: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
    out = []
    for i in range(0, len(x), chunk):
        d = torch.cdist(x[i : i + chunk], x)
        out.append(d.kthvalue(k + 1, dim=1).values)
    return torch.cat(out)


def _inside(
    points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, chunk: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per point: whether it lies inside any ball, and how many balls contain it."""
    inside, counts = [], []
    for i in range(0, len(points), chunk):
        within = torch.cdist(points[i : i + chunk], centres) <= radii[None, :]
        inside.append(within.any(1))
        counts.append(within.sum(1))
    return torch.cat(inside), torch.cat(counts)


def precision_recall(fake: torch.Tensor, real: torch.Tensor, *, k: int = 5, chunk: int = 1024) -> dict[str, float]:
    """Precision, recall, density and coverage of fake features against real features (k nearest neighbours)."""
    fake, real = fake.double(), real.double()
    if min(len(fake), len(real)) <= k:
        raise InvalidInput(f"precision/recall with k={k} needs more than {k} vectors per set: {len(fake)}, {len(real)}")
    real_r, fake_r = _kth_radius(real, k, chunk), _kth_radius(fake, k, chunk)
    in_real, counts = _inside(fake, real, real_r, chunk)
    in_fake, _ = _inside(real, fake, fake_r, chunk)
    nearest_fake = torch.cat([torch.cdist(real[i : i + chunk], fake).min(1).values for i in range(0, len(real), chunk)])
    return {
        "precision": float(in_real.double().mean()),
        "recall": float(in_fake.double().mean()),
        "density": float(counts.double().sum() / (k * len(fake))),
        "coverage": float((nearest_fake <= real_r).double().mean()),
    }


def precision_recall_with_floor(
    fake: torch.Tensor, real: torch.Tensor, reference: torch.Tensor, *, k: int = 5, seed: int = 0
) -> list[MetricValue]:
    """Precision, recall, density and coverage of fake vs reference, each next to real-vs-reference at the same n
    (`same_size`: a seeded random n rows of each)."""
    fake, real, reference = same_size(fake, real, reference, seed=seed)
    value = precision_recall(fake, reference, k=k)
    floor = precision_recall(real, reference, k=k)
    return [MetricValue(name, value[name], floor[name], len(fake)) for name in value]


PRDC = ("precision", "recall", "density", "coverage")
_CLASS_NAME = re.compile(rf"^class(\d+)_({'|'.join(PRDC)})")


def class_metric_name(index: int, metric: str) -> str:
    """Name of one class's value in a metrics dict, e.g. `class3_recall` (the class index into the label space)."""
    return f"class{index}_{metric}"


def per_class_precision_recall(fake: Images, real: Images, reference: Images, *, k: int = 5) -> list[MetricValue]:
    """`precision_recall_with_floor` within each class: features (x) with class indices (y), each class's k-NN
    radii from its own features. A class with at most `k` vectors in any set is left out (no manifold)."""
    out: list[MetricValue] = []
    for index in sorted(set(fake[1].tolist()) & set(real[1].tolist()) & set(reference[1].tolist())):
        parts = [x[y == index] for x, y in (fake, real, reference)]
        if min(len(p) for p in parts) <= k:
            continue
        for value in precision_recall_with_floor(*parts, k=k):
            out.append(MetricValue(class_metric_name(index, value.name), value.value, value.floor, value.n))
    return out


def is_per_class(key: str) -> bool:
    """Whether a metric name or flat metadata key (`class3_recall`, `class3_recall_floor`) is a per-class value."""
    return _CLASS_NAME.match(key) is not None


def per_class_table(metrics: Mapping[str, MetricValue]) -> dict[int, dict[str, MetricValue]]:
    """The per-class values of a metrics dict by class index, then metric name."""
    table: dict[int, dict[str, MetricValue]] = {}
    for name, value in metrics.items():
        match = _CLASS_NAME.fullmatch(name)
        if match:
            table.setdefault(int(match.group(1)), {})[match.group(2)] = value
    return dict(sorted(table.items()))


def worst_class(metrics: Mapping[str, MetricValue], among: Collection[int] | None = None) -> int | None:
    """The class index with the lowest recall (`among` those indices when given), or None when none was measured."""
    recalls = {i: row["recall"].value for i, row in per_class_table(metrics).items() if among is None or i in among}
    return min(recalls, key=lambda i: (recalls[i], i)) if recalls else None
