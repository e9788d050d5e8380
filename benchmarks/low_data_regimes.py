"""The low-data benchmark's regimes: how many images of each class a regime lands, its kind, and the issue's
targets for it."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_VAL_SHARE = 0.2  # share of the landed images in the pipeline's val split (checkpoints, choices, verdict)


@dataclass(frozen=True)
class Regime:
    """One landing: its name, how many images of each class (CLASS_NAMES order) and its kind."""

    name: str
    counts: tuple[int, ...]
    kind: str

    @property
    def long_tailed(self) -> bool:
        return self.kind == "long-tailed"


def parse_regime(spec: str) -> Regime:
    """`N` (balanced N per class; few-shot at 20 and below), `longtail` (5 x 500 + 5 x 25) or `longtail:A:B`."""
    if spec.startswith("longtail"):
        parts = spec.split(":")
        many, few = (int(parts[1]), int(parts[2])) if len(parts) == 3 else (500, 25)
        return Regime(f"longtail-{many}-{few}", (many,) * 5 + (few,) * 5, "long-tailed")
    n = int(spec)
    return Regime(f"per-class-{n}", (n,) * 10, "few-shot" if n <= 20 else "balanced")


def targets(regime: Regime) -> list[tuple[str, str, float, str]]:
    """(figure, its key in the results, threshold, rule) of the issue's targets for a regime: a gain at least the
    threshold with its 95% CI above zero, or 'not worse' (the CI reaches zero or above)."""
    if regime.long_tailed:
        return [
            ("balanced accuracy gain (c) − (b)", "gain_test", 0.015, "above"),
            ("rare-class recall gain (c) − (b)", "gain_rare", 0.05, "above"),
        ]
    if regime.kind == "balanced" and regime.counts[0] >= 500:
        return [("accuracy gain (c) − (b)", "gain_test", 0.0, "not worse")]
    if regime.kind == "balanced":
        return [("accuracy gain (c) − (b)", "gain_test", 0.015, "above")]
    return []


def landed_counts(regime: Regime, val_share: float) -> tuple[int, ...]:
    """Images landed per class: the regime's counts at the default val share (0.2); with a larger share, enough more
    that the train split keeps its expected size (N × 0.8) and only val grows."""
    return tuple(int(round(n * (1 - DEFAULT_VAL_SHARE) / (1 - val_share))) for n in regime.counts)
