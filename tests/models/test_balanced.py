"""Class-balanced generator batches on a long-tailed split: every class drawn about equally, the same draws for the
same epoch (exact resume), and the GAN stage switching to them only where the split is long-tailed."""

from __future__ import annotations

import numpy as np
import pytest

from synthaug.core.compute import torch_threads
from synthaug.core.layout import DataLayout
from synthaug.models.balanced import BalancedBatches
from synthaug.models.gan.config import Budget, TrainConfig
from synthaug.models.gan.networks import ModelConfig
from synthaug.models.stages import train_gan_checkpoint
from synthaug.tensors.norm_stats import compute_normalization_stats, write_normalization_stats
from tests.synthetic.helpers import CLASSES, FASHION_LABEL, garments, write_tensors


def test_balanced_batches_draw_the_rare_class_as_often_as_the_frequent_one_and_repeat_per_epoch(fashion_train):
    pixels = np.concatenate([garments(fashion_train, 0, 0, 90), garments(fashion_train, 1, 0, 10)])
    labels = np.repeat([0, 1], [90, 10])
    affine = (np.full(1, 2 / 255), np.full(1, -1.0))
    batches = BalancedBatches(pixels, labels, batch_size=20, seed=3, affine=affine)
    epoch = list(batches(0))
    assert len(epoch) == 5 and all(x.shape == (20, 1, 32, 32) for x, _ in epoch)
    drawn = np.concatenate([y.numpy() for _, y in epoch])
    assert 0.3 <= (drawn == 1).mean() <= 0.7  # 10% of the images, about half of the draws
    assert float(min(x.min() for x, _ in epoch)) >= -1.0 and float(max(x.max() for x, _ in epoch)) <= 1.0
    again = np.concatenate([y.numpy() for _, y in batches(0)])
    other = np.concatenate([y.numpy() for _, y in batches(1)])
    assert np.array_equal(drawn, again) and not np.array_equal(drawn, other)


@pytest.mark.parametrize(("train_counts", "balance", "expected"), [((3, 40, 40), "auto", True),
                                                                   ((3, 40, 40), "off", False),
                                                                   ((40, 40, 40), "auto", False)])  # fmt: skip
def test_the_gan_stage_balances_its_batches_only_on_a_long_tailed_split(
    tmp_path, fashion_train, train_counts, balance, expected
):
    layout = DataLayout(tmp_path / "data")
    xs = [garments(fashion_train, FASHION_LABEL[c], 0, n) for c, n in zip(CLASSES, train_counts, strict=True)]
    split = {"train": (np.concatenate(xs), np.repeat(np.arange(len(CLASSES)), train_counts))}
    write_tensors(layout, "b1", split, CLASSES)
    stats = compute_normalization_stats(layout, ["b1"])
    write_normalization_stats(layout, stats)
    config = TrainConfig(model=ModelConfig(resolution=32, channels=1, num_classes=3, width=4, z_dim=8))
    budget = Budget(steps=2, checkpoint_every=2, log_every=1, progress_interval_s=0.0)
    with torch_threads(1):
        run = train_gan_checkpoint(layout, stats, config, budget, batch_size=16, class_balance=balance)
    assert run.class_balanced is expected and run.metadata()["class_balanced"] is expected
    assert run.train.step == 2
