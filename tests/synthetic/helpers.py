"""Shared by the synthetic-set tests: the garment classes, hand-written training tensors and a tiny trained GAN."""

from __future__ import annotations

import json

import numpy as np
import torch

from synthaug.core.layout import DataLayout
from synthaug.models.gan.config import Budget, TrainConfig
from synthaug.models.gan.networks import ModelConfig
from synthaug.models.gan.training import train
from synthaug.models.stages import data_version
from synthaug.tensors.norm_stats import load_stats

CLASSES = ["Pullover", "T-shirt_top", "Trouser"]  # Fashion-MNIST labels 2, 0, 1 (sorted names, as the stats keep them)
FASHION_LABEL = {"Pullover": 2, "T-shirt_top": 0, "Trouser": 1}
TRAIN, VAL = 60, 12


def write_tensors(layout: DataLayout, batch: str, splits: dict[str, tuple[np.ndarray, np.ndarray]], classes) -> None:
    """One generation of training tensors holding the given uint8 images and local labels, as `build_tensors` would."""
    generation = layout.tensors_generation(batch, "g-test")
    generation.mkdir(parents=True)
    streams, per_class = {}, {}
    for stream in ("train", "train_aug", "val", "test"):
        x, y = splits.get(stream, (np.empty((0, 1, 32, 32), np.uint8), np.empty(0, np.int16)))
        shards = []
        if len(x):
            np.save(generation / f"{stream}-00000.x.npy", x)
            np.save(generation / f"{stream}-00000.y.npy", y.astype(np.int16))
            shards.append({"name": f"{stream}-00000", "rows": len(x)})
        streams[stream] = {"rows": len(x), "shards": shards}
        names = [classes[i] if i >= 0 else "(unlabeled)" for i in y.tolist()]
        per_class[stream] = {n: names.count(n) for n in sorted(set(names))}
    meta = {"format": 1, "size": 32, "channels": 1, "classes": list(classes), "streams": streams}
    meta |= {"per_class": per_class, "config": {"copies": 0}}
    (generation / "meta.json").write_text(json.dumps(meta))
    layout.tensors_pointer(batch).write_text(json.dumps({"generation": "g-test", "data_version": batch}))


def garments(fashion_train, label: int, start: int, count: int) -> np.ndarray:
    """`count` Fashion-MNIST images of one label from position `start`, padded to 32×32, as N×1×H×W uint8."""
    images, labels = fashion_train
    picks = np.flatnonzero(labels == label)[start : start + count]
    return np.pad(images[picks], ((0, 0), (2, 2), (2, 2)))[:, None]


def train_gan(
    layout: DataLayout, x: np.ndarray, y: np.ndarray, num_classes: int, steps: int = 3, version: str | None = None
) -> None:
    """A real projection-D SN hinge GAN (4 channels wide) trained a few steps into the layout's checkpoint folder,
    recorded as trained on `version` (default: the layout's current tensors, sampled plainly)."""
    stats = load_stats(layout)
    xf = torch.from_numpy(x).float().div(127.5).sub(1.0)
    yt = torch.from_numpy(y.astype(np.int64))

    def batches(epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(xf), generator=torch.Generator().manual_seed(epoch))
        return [(xf[order[i : i + 16]], yt[order[i : i + 16]]) for i in range(0, len(xf) - 15, 16)]

    model = ModelConfig(resolution=32, channels=1, num_classes=num_classes, width=4, z_dim=8)
    budget = Budget(steps=steps, checkpoint_every=steps, log_every=1, progress_interval_s=0.0)
    train(
        batches,
        TrainConfig(model=model, ema_warmup_steps=2),
        layout.gan_checkpoints_dir(),
        version or data_version(stats),
        budget,
    )
