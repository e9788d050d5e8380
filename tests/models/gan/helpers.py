"""Shared settings of the GAN tests: a tiny real model and a step budget that logs every step."""

from __future__ import annotations

from pathlib import Path

import torch

from synthaug.models.gan.config import Budget, TrainConfig
from synthaug.models.gan.networks import ModelConfig
from synthaug.models.gan.pipeline import EvalData, GanRun, train_gan
from synthaug.models.metrics.classifier import ClassifierConfig, SmallCNN
from synthaug.models.stages import measure_generator

TINY = ModelConfig(resolution=32, channels=1, num_classes=3, width=4, z_dim=8)


def tiny_config(**overrides) -> TrainConfig:
    """A real projection-D SN hinge cGAN, 4 channels wide, so a step takes milliseconds."""
    return TrainConfig(**{"model": TINY, "ema_warmup_steps": 2, **overrides})


def budget(steps: int | None, every: int = 3, **kwargs) -> Budget:
    """A budget that logs every step, reports progress every step and checkpoints every `every` steps."""
    return Budget(steps=steps, checkpoint_every=every, log_every=1, progress_interval_s=0.0, **kwargs)


def trained_and_measured(batches, config: TrainConfig, root: Path, garments, **kwargs) -> GanRun:
    """`train_gan` for 3 steps on three garment classes (64 each), its grid beside half of `garments` and its
    FID/KID/PR (20 samples per class) in the features of an untrained tiny extractor, as the asset measures them."""
    x, y = garments
    torch.manual_seed(0)
    extractor = SmallCNN(ClassifierConfig(num_classes=3, width=4, feature_dim=8)).eval()
    eval_data = EvalData(reference=(x[::2], y[::2]), real=(x[1::2], y[1::2]))
    counts = {"top": 64, "trouser": 64, "pullover": 64}
    run = train_gan(batches, config, root, "data-1", budget(3), class_counts=counts, eval_data=eval_data, **kwargs)
    run.metrics = measure_generator(run.train.sampler, eval_data, extractor, ("fid", "kid", "pr"), 20, seed=0)
    return run
