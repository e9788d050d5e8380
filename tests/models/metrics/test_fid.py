"""FID and KID: zero for identical sets, the closed form for shifted Gaussians, floors at the same n."""

from __future__ import annotations

import pytest
import torch

from synthaug.models.metrics.fid import (
    fid_with_floor,
    frechet_distance,
    kernel_distance,
    kid_with_floor,
    same_size,
)


@pytest.fixture
def gauss() -> torch.Tensor:
    return torch.randn(2000, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def test_fid_of_a_set_with_itself_is_zero(gauss):
    assert frechet_distance(gauss, gauss) == pytest.approx(0.0, abs=1e-6)


def test_fid_of_a_shifted_set_is_the_squared_shift(gauss):
    shift = torch.zeros(16, dtype=torch.float64)
    shift[:4] = 1.5
    assert frechet_distance(gauss, gauss + shift) == pytest.approx(4 * 1.5**2, rel=1e-6)


def test_fid_of_a_scaled_set_matches_the_gaussian_formula(gauss):
    # same mean, covariance s²·C: tr(C + s²C − 2sC) = (1 − s)² tr(C)
    cov_trace = torch.trace(torch.cov(gauss.T)).item()
    assert frechet_distance(gauss, 2 * gauss) == pytest.approx(cov_trace, rel=1e-3)


def test_kid_is_unbiased_near_zero_for_two_samples_of_one_distribution():
    rng = torch.Generator().manual_seed(1)
    a, b = torch.randn(1000, 16, generator=rng), torch.randn(1000, 16, generator=rng)
    mean, std = kernel_distance(a, b, subsets=20, subset_size=500)
    assert abs(mean) < 3 * std + 1e-3
    shifted, _ = kernel_distance(a, b + 0.5, subsets=5, subset_size=500)
    assert shifted > 10 * max(abs(mean), 1e-3)


def test_floor_is_computed_at_the_same_sample_size(gauss):
    rng = torch.Generator().manual_seed(2)
    reference, real = gauss[:800], gauss[800:]
    fake = torch.randn(500, 16, generator=rng, dtype=torch.float64) + 1.0
    fid = fid_with_floor(fake, real, reference)
    assert fid.n == 500 and fid.floor < 1.0 < fid.value
    kid = kid_with_floor(fake, real, reference)
    assert kid.n == 500 and kid.floor < kid.value and "kid_std" in kid.extra
    assert set(fid.as_dict()) == {"fid", "fid_floor", "fid_n"}


def test_too_few_vectors_is_an_error():
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(torch.zeros(1, 3), torch.zeros(5, 3))


def test_a_set_stored_class_by_class_is_cut_to_a_random_sample_not_its_first_classes():
    rng = torch.Generator().manual_seed(3)
    centres = torch.arange(10, dtype=torch.float64).repeat_interleave(100)[:, None] * torch.ones(1, 4)
    by_class = centres + 0.1 * torch.randn(1000, 4, generator=rng, dtype=torch.float64)
    shuffled = by_class[torch.randperm(1000, generator=rng)]
    fid = fid_with_floor(by_class, shuffled[:200], shuffled[200:])
    assert fid.n == 200
    assert fid.value < 1.0, "a prefix of 200 would hold classes 0 and 1 only: FID about 30"
    kept = same_size(by_class, shuffled[:200])[0][:, 0].round().unique()
    assert len(kept) == 10
