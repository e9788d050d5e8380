"""Shared settings of the GAN tests: a tiny real model and a step budget that logs every step."""

from __future__ import annotations

from synthaug.models.gan.config import Budget, TrainConfig
from synthaug.models.gan.networks import ModelConfig

TINY = ModelConfig(resolution=32, channels=1, num_classes=3, width=4, z_dim=8)


def tiny_config(**overrides) -> TrainConfig:
    """A real projection-D SN hinge cGAN, 4 channels wide, so a step takes milliseconds."""
    return TrainConfig(**{"model": TINY, "ema_warmup_steps": 2, **overrides})


def budget(steps: int | None, every: int = 3, **kwargs) -> Budget:
    """A budget that logs every step, reports progress every step and checkpoints every `every` steps."""
    return Budget(steps=steps, checkpoint_every=every, log_every=1, progress_interval_s=0.0, **kwargs)
