"""k-NN precision and recall (Kynkäänniemi et al. 2019) with density and coverage (Naeem et al. 2020): does each
generated image fall inside the real manifold (precision), and does the generated manifold cover the real images
(recall)? Manifolds are unions of balls reaching each point's k-th nearest neighbour."""

from __future__ import annotations

import torch

from synthaug.core.errors import InvalidInput
from synthaug.models.metrics.fid import MetricValue


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
    fake: torch.Tensor, real: torch.Tensor, reference: torch.Tensor, *, k: int = 5
) -> list[MetricValue]:
    """Precision, recall, density and coverage of fake vs reference, each next to real-vs-reference at the same n."""
    n = min(len(fake), len(real), len(reference))
    value = precision_recall(fake[:n], reference[:n], k=k)
    floor = precision_recall(real[:n], reference[:n], k=k)
    return [MetricValue(name, value[name], floor[name], n) for name in value]
