"""The augmentation report's arithmetic: t critical values, t intervals by hand, and the gain paired by seed."""

from __future__ import annotations

import pytest

from synthaug.report.stats import mean_ci, paired_gain, t_critical


def test_t_critical_values_match_the_tables():
    assert t_critical(2) == pytest.approx(4.3026527, abs=1e-6)  # n = 3 seeds
    assert t_critical(1) == pytest.approx(12.7062047, abs=1e-6)
    assert t_critical(4) == pytest.approx(2.7764451, abs=1e-6)
    assert t_critical(29) == pytest.approx(2.0452296, abs=1e-6)
    assert t_critical(2, 0.90) == pytest.approx(2.9199856, abs=1e-6)
    with pytest.raises(ValueError, match="degree of freedom"):
        t_critical(0)
    with pytest.raises(ValueError, match="confidence"):
        t_critical(2, 1.0)


def test_mean_ci_by_hand_for_three_seeds():
    ci = mean_ci([0.80, 0.82, 0.84])
    # s = 0.02, half width = t(2) * s / sqrt(3) = 4.302653 * 0.02 / 1.7320508 = 0.0496828
    assert ci.mean == pytest.approx(0.82)
    assert ci.half_width == pytest.approx(0.0496828, abs=1e-6)
    assert (ci.low, ci.high, ci.n) == (pytest.approx(0.7703172, abs=1e-6), pytest.approx(0.8696828, abs=1e-6), 3)
    single = mean_ci([0.5])
    assert (single.low, single.high, single.half_width) == (None, None, None)


def test_paired_gain_uses_per_seed_differences():
    # every seed gains exactly one point: the paired CI is [+1, +1] although the arms' own CIs overlap widely
    gain = paired_gain([0.80, 0.85, 0.90], [0.79, 0.84, 0.89])
    assert gain.mean == pytest.approx(0.01) and gain.low == pytest.approx(0.01) and gain.excludes_zero_above()
    assert mean_ci([0.80, 0.85, 0.90]).low < mean_ci([0.79, 0.84, 0.89]).high
    # differences 0.02, 0.03, 0.01: mean 0.02, s 0.01, half width 4.302653 * 0.01 / sqrt(3) = 0.0248414
    noisy = paired_gain([0.85, 0.86, 0.84], [0.83, 0.83, 0.83])
    assert noisy.half_width == pytest.approx(0.0248414, abs=1e-6) and not noisy.excludes_zero_above()
    with pytest.raises(ValueError, match="one value per seed"):
        paired_gain([0.1, 0.2], [0.1])
