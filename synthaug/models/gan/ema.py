"""Exponential moving average of the generator's weights: samples from the average are smoother and better than
from the last step's weights. The decay ramps up from 0 so the average is not dominated by the random init."""

from __future__ import annotations

import copy

import torch
from torch import nn

from synthaug.core.errors import InvalidInput


def ema_decay(step: int, beta: float, warmup_steps: int) -> float:
    """Decay used after `step` updates: min(beta, (1 + step) / (warmup_steps + step)), 0 while step is 0."""
    if warmup_steps <= 0:
        return beta
    return min(beta, (1.0 + step) / (warmup_steps + step)) if step > 0 else 0.0


class GeneratorEma:
    """A frozen copy of the generator whose parameters follow ema ← d·ema + (1 − d)·param; buffers are copied."""

    def __init__(self, generator: nn.Module, beta: float = 0.999, warmup_steps: int = 10) -> None:
        if not 0.0 <= beta < 1.0:
            raise InvalidInput(f"EMA beta must be in [0, 1), got {beta}")
        self.beta = beta
        self.warmup_steps = warmup_steps
        self.steps = 0
        self.model = copy.deepcopy(generator).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, generator: nn.Module) -> float:
        """Move the average toward `generator`'s current weights; returns the decay used."""
        decay = ema_decay(self.steps, self.beta, self.warmup_steps)
        ema_params = list(self.model.parameters())
        params = [p.detach() for p in generator.parameters()]
        torch._foreach_lerp_(ema_params, params, 1.0 - decay)
        for ema_buffer, buffer in zip(self.model.buffers(), generator.buffers(), strict=True):
            ema_buffer.copy_(buffer)
        self.steps += 1
        return decay

    def state_dict(self) -> dict:
        """Weights and update count, for checkpoints."""
        return {"model": self.model.state_dict(), "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        """Restore from `state_dict()`."""
        self.model.load_state_dict(state["model"])
        self.steps = int(state["steps"])
