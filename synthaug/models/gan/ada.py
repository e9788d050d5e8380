"""Adaptive augmentation strength (Karras et al. 2020, "ADA") for DiffAugment: the probability `p` that each image
the discriminator sees is augmented, raised while the discriminator is overconfident on real images and lowered
otherwise. Overfitting shows as r = E[sign(D(real))] drifting towards 1; the controller holds r at `target`, so a
small data set gets strong augmentation and a large one is left nearly unaugmented."""

from __future__ import annotations

from typing import Any

import torch

from synthaug.core.errors import InvalidInput

ADJUST_EVERY = 4  # steps between adjustments (ADA's interval)
SPEED_IMAGES = 100_000  # real images over which p can move from 0 to 1 (ADA: 500k; 5x faster for CPU budgets)


class AdaptiveStrength:
    """The controller: `observe` the discriminator's real logits every step, and every `ADJUST_EVERY` steps `p`
    moves by (batch × steps / `SPEED_IMAGES`) towards more augmentation when r is above `target`, less below."""

    def __init__(self, target: float) -> None:
        if not 0 < target < 1:
            raise InvalidInput(f"the ADA target must be in (0, 1) (ADA uses 0.6), got {target}")
        self.target = target
        self.p = 0.0
        self.r = float("nan")
        self._signs = 0.0
        self._images = 0
        self._steps = 0

    def observe(self, real_logits: torch.Tensor) -> None:
        """Count one step's real logits; adjust `p` when `ADJUST_EVERY` steps are counted."""
        self._signs += float(torch.sign(real_logits.detach().float()).sum())
        self._images += real_logits.numel()
        self._steps += 1
        if self._steps >= ADJUST_EVERY:
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                totals = torch.tensor([self._signs, float(self._images)], device=real_logits.device)
                torch.distributed.all_reduce(totals)  # every rank adjusts by the same r, so p stays equal
                self._signs, self._images = float(totals[0]), int(totals[1])
            self.r = self._signs / max(self._images, 1)
            step = self._images / SPEED_IMAGES
            self.p = min(max(self.p + (step if self.r > self.target else -step), 0.0), 1.0)
            self._signs, self._images, self._steps = 0.0, 0, 0

    def state_dict(self) -> dict[str, Any]:
        """Everything an exact resume needs."""
        return {"p": self.p, "r": self.r, "signs": self._signs, "images": self._images, "steps": self._steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from `state_dict()`."""
        self.p, self.r = float(state["p"]), float(state["r"])
        self._signs, self._images, self._steps = float(state["signs"]), int(state["images"]), int(state["steps"])
