"""When to retrain: has the clean train data grown by a given share since the last checkpoint was trained?"""

from __future__ import annotations

import math
from dataclasses import dataclass

from synthaug.core.errors import InvalidInput

DEFAULT_GROWTH_SHARE = 0.2


@dataclass(frozen=True)
class GrowthDecision:
    """Whether training is due, and the one line a person reads in the sensor's tick history."""

    due: bool
    reason: str


def parse_growth_share(text: str | None, default: float = DEFAULT_GROWTH_SHARE) -> float:
    """A growth share from an environment value (`0.2` = 20 %); blank gives `default`, anything else not > 0 fails."""
    if text is None or not text.strip():
        return default
    try:
        share = float(text)
    except ValueError:
        raise InvalidInput(f"growth share {text!r} is not a number; use e.g. 0.2 for 20 %") from None
    if not math.isfinite(share) or share <= 0:
        raise InvalidInput(f"growth share must be a finite number above 0 (0.2 = 20 %), got {text!r}")
    return share


def training_due(current: int, at_checkpoint: int | None, share: float) -> GrowthDecision:
    """Due when `current` train images exceed the checkpoint's count by at least `share` of it.

    `at_checkpoint` None means no checkpoint exists yet: due as soon as there is any train image."""
    if share <= 0:
        raise InvalidInput(f"growth share must be above 0, got {share}")
    if current < 0 or (at_checkpoint is not None and at_checkpoint < 0):
        raise InvalidInput(f"image counts cannot be negative (current {current}, at checkpoint {at_checkpoint})")
    if at_checkpoint is None:
        if current == 0:
            return GrowthDecision(False, "no checkpoint yet and no train images to learn from")
        return GrowthDecision(True, f"no checkpoint yet; {current} train images are ready")
    needed = growth_target(at_checkpoint, share)
    grown = current - at_checkpoint
    pct = f"{grown / at_checkpoint:+.1%}" if at_checkpoint else "from none"
    summary = f"{current} train images now, {at_checkpoint} at the last checkpoint ({pct}); retrain at {needed}"
    return GrowthDecision(current >= needed, summary)


def growth_target(at_checkpoint: int, share: float) -> int:
    """The smallest train-image count that is `share` more than `at_checkpoint` (at least one more image)."""
    return max(at_checkpoint + 1, math.ceil(at_checkpoint * (1 + share) - 1e-9))
