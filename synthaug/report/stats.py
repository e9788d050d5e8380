"""Confidence intervals of the augmentation report: Student t intervals over seeds, and the gain (c) − (b) paired
by seed."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import t as student_t

from synthaug.core.errors import InvalidInput


def t_critical(df: int, confidence: float = 0.95) -> float:
    """Two-sided Student t critical value: P(|T| <= t) = confidence for T with `df` degrees of freedom (scipy's
    quantile function, so the interval half-widths match the statistics tables)."""
    if df < 1:
        raise InvalidInput(f"a t interval needs at least 1 degree of freedom, got {df}")
    if not 0 < confidence < 1:
        raise InvalidInput(f"confidence must be in (0, 1), got {confidence}")
    return float(student_t.ppf((1 + confidence) / 2, df))


@dataclass(frozen=True)
class Interval:
    """Mean of `n` values with a two-sided Student t confidence interval (low/high None when n < 2)."""

    mean: float
    low: float | None
    high: float | None
    n: int
    confidence: float = 0.95

    @property
    def half_width(self) -> float | None:
        """Half the interval's width (None when it could not be computed)."""
        return None if self.high is None else self.high - self.mean

    def excludes_zero_above(self) -> bool:
        """True when the whole interval lies above zero."""
        return self.low is not None and self.low > 0

    def points(self) -> str:
        """`+1.23 ± 0.45` in accuracy points (×100), or `+1.23 (no CI)`."""
        half = self.half_width
        return f"{100 * self.mean:+.2f}" + (f" ± {100 * half:.2f}" if half is not None else " (no CI)")

    def percent(self) -> str:
        """`83.40% ± 0.51` (accuracy in percent, half-width in points)."""
        half = self.half_width
        return f"{100 * self.mean:.2f}%" + (f" ± {100 * half:.2f}" if half is not None else "")


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Mean and Student t interval: mean ± t(n-1) · s / sqrt(n), with s the sample standard deviation."""
    v = np.asarray(values, dtype=np.float64)
    if not len(v):
        raise InvalidInput("a confidence interval needs at least one value")
    mean = float(v.mean())
    if len(v) < 2:
        return Interval(mean, None, None, 1, confidence)
    half = t_critical(len(v) - 1, confidence) * float(v.std(ddof=1)) / math.sqrt(len(v))
    return Interval(mean, mean - half, mean + half, len(v), confidence)


def paired_gain(treated: Sequence[float], control: Sequence[float], confidence: float = 0.95) -> Interval:
    """Mean difference treated − control with a t interval over the per-seed differences (a paired interval)."""
    if len(treated) != len(control):
        raise InvalidInput(
            f"a paired gain needs one value per seed in both arms, got {len(treated)} and {len(control)}"
        )
    return mean_ci(np.asarray(treated, np.float64) - np.asarray(control, np.float64), confidence)
