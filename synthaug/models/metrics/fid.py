"""Fréchet distance (FID) and kernel inception distance (KID) between two sets of features, and the helpers that
put a fake-vs-real value next to the real-vs-real floor at the same sample size."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from synthaug.core.errors import InvalidInput


@dataclass(frozen=True)
class MetricValue:
    """A metric of generated vs reference images, the same metric of held-out real vs reference (the floor), n."""

    name: str
    value: float
    floor: float | None
    n: int
    extra: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, float | int | None]:
        """Flat dict for metadata: `{name}`, `{name}_floor`, `{name}_n` and extras."""
        return {self.name: self.value, f"{self.name}_floor": self.floor, f"{self.name}_n": self.n, **self.extra}


def _stats(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    f = features.double()
    if f.ndim != 2 or f.shape[0] < 2:
        raise InvalidInput(f"need at least 2 feature vectors (N×D), got shape {tuple(f.shape)}")
    return f.mean(0), torch.cov(f.T).reshape(f.shape[1], f.shape[1])


def _sqrtm_psd(matrix: torch.Tensor) -> torch.Tensor:
    values, vectors = torch.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * values.clamp_min(0).sqrt()) @ vectors.T


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """‖μa − μb‖² + tr(Σa + Σb − 2(Σa^½ Σb Σa^½)^½) between Gaussians fitted to feature sets a and b."""
    mu_a, cov_a = _stats(a)
    mu_b, cov_b = _stats(b)
    root_a = _sqrtm_psd(cov_a)
    cross = _sqrtm_psd(root_a @ cov_b @ root_a)
    value = (mu_a - mu_b).square().sum() + torch.trace(cov_a) + torch.trace(cov_b) - 2 * torch.trace(cross)
    return float(value.clamp_min(0.0))


def kernel_distance(
    a: torch.Tensor, b: torch.Tensor, *, subsets: int = 10, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """KID: unbiased MMD² with the cubic polynomial kernel (x·y/d + 1)³, mean and std over random subsets."""
    a, b = a.double(), b.double()
    m = min(subset_size, len(a), len(b))
    if m < 2:
        raise InvalidInput(f"KID needs at least 2 feature vectors per set, got {len(a)} and {len(b)}")
    d = a.shape[1]
    rng = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(subsets):
        x = a[torch.randperm(len(a), generator=rng)[:m]]
        y = b[torch.randperm(len(b), generator=rng)[:m]]
        kxx, kyy, kxy = ((x @ x.T) / d + 1) ** 3, ((y @ y.T) / d + 1) ** 3, ((x @ y.T) / d + 1) ** 3
        off = (kxx.sum() - kxx.diagonal().sum() + kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
        values.append(float(off - 2 * kxy.mean()))
    t = torch.tensor(values)
    return float(t.mean()), float(t.std()) if len(values) > 1 else 0.0


def same_size(*sets: torch.Tensor, seed: int = 0) -> list[torch.Tensor]:
    """Every set cut to the smallest one's size n by a seeded random choice of n rows, so that a set stored class by
    class (generated images usually are) is not cut to its first classes."""
    n = min(len(s) for s in sets)
    rng = torch.Generator().manual_seed(seed)
    return [s if len(s) == n else s[torch.randperm(len(s), generator=rng)[:n]] for s in sets]


def with_floor(
    name: str,
    metric: Callable[[torch.Tensor, torch.Tensor], float],
    fake: torch.Tensor,
    real: torch.Tensor,
    reference: torch.Tensor,
    seed: int = 0,
) -> MetricValue:
    """metric(fake, reference) next to metric(real, reference), all three cut to the same size n (`same_size`).

    `real` must be real images disjoint from `reference` (e.g. train vs val split), so the floor is what a perfect
    generator would score at this n.
    """
    fake, real, reference = same_size(fake, real, reference, seed=seed)
    return MetricValue(name, metric(fake, reference), metric(real, reference), len(fake))


def fid_with_floor(fake: torch.Tensor, real: torch.Tensor, reference: torch.Tensor) -> MetricValue:
    """FID of generated features vs reference, next to real-vs-reference at the same n."""
    return with_floor("fid", frechet_distance, fake, real, reference)


def kid_with_floor(fake: torch.Tensor, real: torch.Tensor, reference: torch.Tensor, seed: int = 0) -> MetricValue:
    """KID (mean over subsets) of generated features vs reference, next to real-vs-reference at the same n."""
    fake, real, reference = same_size(fake, real, reference, seed=seed)
    value, std = kernel_distance(fake, reference, seed=seed)
    floor, floor_std = kernel_distance(real, reference, seed=seed)
    return MetricValue("kid", value, floor, len(fake), {"kid_std": std, "kid_floor_std": floor_std})
