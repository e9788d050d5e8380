"""train_gan end to end on real garments: checkpoint, loss curve, real-beside-generated grid, metrics with floors;
the torchrun command line in one process."""

from __future__ import annotations

import io

import pytest
import torch
from PIL import Image

from synthaug.models.gan import launch
from synthaug.models.gan.pipeline import load_sampler, train_gan
from synthaug.models.gan.sampling import GRID_HEADER, GRID_PADDING
from synthaug.models.gan.training import train
from synthaug.models.gan.vae import ConditionalVAE
from tests.models.gan.helpers import budget, tiny_config, trained_and_measured


def test_train_gan_returns_checkpoint_pictures_and_metrics_with_floors(tmp_path, make_batches, fashion32):
    names = ["top", "trouser", "pullover"]
    run = trained_and_measured(make_batches, tiny_config(), tmp_path, fashion32, class_names=names, grid_per_class=4)
    assert run.checkpoint is not None and run.checkpoint.exists() and run.train.step == 3
    assert Image.open(io.BytesIO(run.loss_curve_png)).format == "PNG"
    assert Image.open(io.BytesIO(run.sample_grid_png)).height == GRID_HEADER + 3 * (32 + GRID_PADDING) + GRID_PADDING
    assert {"fid", "kid", "precision", "recall", "density", "coverage"} <= set(run.metrics)
    assert run.metrics["fid"].n == 60 and run.metrics["fid"].floor is not None
    meta = run.metadata()
    assert meta["step"] == 3 and "fid_floor" in meta and meta["version"] == run.train.version


def test_load_sampler_gives_the_ema_generator_of_the_latest_checkpoint(tmp_path, make_batches):
    with pytest.raises(FileNotFoundError, match="materialize gan_checkpoint first"):
        load_sampler(tmp_path)
    result = train(make_batches, tiny_config(), tmp_path, "d", budget(2))
    sampler, found = load_sampler(tmp_path)
    assert found.step == 2 and found.version == result.version
    z, labels = torch.randn(4, 8), torch.tensor([0, 1, 2, 0])
    result.sampler.eval()
    assert torch.equal(sampler.sample(z, labels), result.sampler.sample(z, labels))
    vae = train(make_batches, tiny_config(family="vae"), tmp_path, "d", budget(1))
    assert isinstance(load_sampler(tmp_path, vae.version)[0], ConditionalVAE)


def test_fewer_than_two_learnable_classes_is_a_clear_error_before_training(tmp_path, make_batches):
    with pytest.raises(ValueError, match=r"at least 2 classes with 2 or more train images.*'trouser': 1"):
        train_gan(make_batches, tiny_config(), tmp_path, "d", budget(1), class_counts={"top": 5, "trouser": 1})
    assert not list(tmp_path.iterdir())


def test_launch_command_trains_in_one_process(tmp_path, capsys):
    argv = ["--out", str(tmp_path), "--steps", "2", "--per-class", "4", "--batch-size", "8", "--width", "4"]
    launch.main([*argv, "--threads", "1"])
    assert "1 process(es)" in capsys.readouterr().out
    assert list(tmp_path.glob("*/ckpt-000000002.pt"))
