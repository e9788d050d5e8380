"""The diffusion family on real garments: its schedule, UNet shapes, the ε-objective falling on a fixed batch, DDIM
sampling (shape, range, determinism, guidance), exact resume, and the same entry points as the GAN and the VAE."""

from __future__ import annotations

import io

import pytest
import torch
from PIL import Image

from synthaug.core.compute import resolve_compute
from synthaug.models.gan import launch
from synthaug.models.gan.config import TrainConfig
from synthaug.models.gan.diffusion import DiffusionModel, cosine_alpha_bars, diffusion_model, sampling_timesteps
from synthaug.models.gan.distributed import World
from synthaug.models.gan.networks import ModelConfig
from synthaug.models.gan.pipeline import load_sampler
from synthaug.models.gan.sampling import sample_per_class
from synthaug.models.gan.trainers import DiffusionTrainer
from synthaug.models.gan.training import train, version_for
from tests.models.gan.helpers import TINY, budget, tiny_config, trained_and_measured


def diffusion_config(**overrides) -> TrainConfig:
    """The tiny model as a diffusion family with a 4-step sampler, so sampling takes milliseconds."""
    return tiny_config(**{"family": "diffusion", "sample_steps": 4, **overrides})


def test_cosine_schedule_falls_from_almost_one_to_almost_zero():
    a = cosine_alpha_bars(1000)
    assert a.shape == (1000,) and (a[1:] < a[:-1]).all()
    assert a[0] > 0.999 and a[-1] < 1e-4


def test_sampler_timesteps_run_down_to_zero_and_skip_the_degenerate_end_of_the_schedule():
    steps = sampling_timesteps(1000, 20)
    assert len(steps) == 20 and steps[-1] == 0 and steps == sorted(steps, reverse=True)
    assert cosine_alpha_bars(1000)[steps[0]] > 1e-3 > cosine_alpha_bars(1000)[999]


@pytest.mark.parametrize(
    ("resolution", "channels", "num_classes", "patch"), [(32, 1, 3, 1), (32, 3, 3, 2), (64, 3, 0, 2), (128, 1, 1, 4)]
)
def test_unet_predicts_noise_of_the_input_shape(resolution, channels, num_classes, patch):
    config = ModelConfig(resolution=resolution, channels=channels, num_classes=num_classes, width=4, z_dim=8)
    model = DiffusionModel(config, patch=patch)
    x = torch.randn(2, channels, resolution, resolution)
    y = torch.zeros(2, dtype=torch.long) if num_classes else None
    assert model(x, torch.tensor([0, 999]), y).shape == x.shape
    assert model.latent_shape == (channels, resolution, resolution)


def test_conditional_model_without_labels_says_so():
    with pytest.raises(ValueError, match="pass labels"):
        DiffusionModel(TINY)(torch.randn(2, 1, 32, 32), torch.tensor([1, 2]))


def test_noised_mixes_image_and_noise_by_the_schedule_and_drops_labels():
    model = DiffusionModel(TINY)
    x0, y = torch.rand(400, 1, 32, 32) * 2 - 1, torch.ones(400, dtype=torch.long)
    x_t, t, noise, y_in = model.noised(x0, y, cond_drop=0.5)
    a = model.alpha_bars[t].view(-1, 1, 1, 1)
    assert torch.allclose(x_t, a.sqrt() * x0 + (1 - a).sqrt() * noise, atol=1e-6)
    dropped = (y_in == model.null_class).float().mean().item()
    assert 0.35 < dropped < 0.65 and set(y_in.tolist()) == {1, model.null_class}
    assert torch.equal(model.noised(x0, y, cond_drop=0.0)[3], y)


def test_epsilon_loss_falls_on_a_fixed_batch_of_garments(fashion32):
    x, y = fashion32
    torch.manual_seed(0)
    trainer = DiffusionTrainer(diffusion_config(diffusion_lr=1e-2), resolve_compute("cpu"), World())
    batch_x, batch_y = x[::12], y[::12]
    losses = [trainer.step(batch_x, batch_y)["loss"] for _ in range(40)]
    assert sum(losses[-5:]) / 5 < 0.6 * sum(losses[:5]) / 5


def test_ddim_samples_are_in_range_deterministic_and_guidance_changes_them():
    torch.manual_seed(0)
    model = DiffusionModel(TINY, timesteps=100, sample_steps=5).eval()
    with torch.no_grad():  # a network with non-zero outputs, so the sampler has something to follow
        for p in model.parameters():
            p.normal_(0, 0.2)
    z, labels = torch.randn(6, 1, 32, 32), torch.tensor([0, 1, 2, 0, 1, 2])
    images = model.sample(z, labels)
    assert images.shape == (6, 1, 32, 32) and images.min() >= -1 and images.max() <= 1
    assert torch.equal(images, model.sample(z, labels))
    assert not torch.equal(images, model.sample(torch.randn(6, 1, 32, 32), labels))
    model.guidance = 3.0
    assert not torch.allclose(images, model.sample(z, labels))
    assert model.sample(3, labels[:3], generator=torch.Generator().manual_seed(1)).shape == (3, 1, 32, 32)


def test_sample_per_class_draws_noise_latents_in_batches_with_progress():
    model = DiffusionModel(TINY, timesteps=100, sample_steps=3)
    seen = []
    a, labels = sample_per_class(model, 5, seed=7, batch_size=4, progress=lambda done, total: seen.append(done))
    b, _ = sample_per_class(model, 5, seed=7, batch_size=100)
    assert a.shape == (15, 1, 32, 32) and labels.tolist() == [0] * 5 + [1] * 5 + [2] * 5
    assert torch.allclose(a, b, atol=1e-4)
    assert seen == [4, 8, 12, 15]


def test_a_latent_scale_is_refused_for_a_diffusion_model_whose_noise_must_stay_unit():
    with pytest.raises(ValueError, match="diffusion model starts from unit noise"):
        sample_per_class(DiffusionModel(TINY, timesteps=100, sample_steps=3), 2, latent_scale=1.5)


def test_invalid_sampler_settings_are_refused():
    with pytest.raises(ValueError, match="sample_steps"):
        diffusion_config(sample_steps=0)
    with pytest.raises(ValueError, match="cond_drop"):
        diffusion_config(cond_drop=1.0)
    with pytest.raises(ValueError, match="diffusion_patch"):
        diffusion_config(diffusion_patch=3)


def test_sampler_settings_do_not_change_the_version_but_diffusion_settings_do():
    base = version_for("d", diffusion_config())
    assert version_for("d", diffusion_config(sample_steps=10, guidance=2.0)) == base
    assert version_for("d", diffusion_config(cond_drop=0.2)) != base
    assert version_for("d", diffusion_config(diffusion_patch=1)) != base
    assert version_for("d", tiny_config(cond_drop=0.2)) == version_for("d", tiny_config()), "GAN ignores them"


def test_resume_after_a_crash_continues_exactly_like_an_uninterrupted_run(tmp_path, make_batches):
    config = diffusion_config()
    full = train(make_batches, config, tmp_path / "a", "data-1", budget(8, every=5))
    first = train(make_batches, config, tmp_path / "b", "data-1", budget(5, every=5))
    resumed = train(make_batches, config, tmp_path / "b", "data-1", budget(8, every=5))
    assert (first.step, resumed.resumed_from_step, resumed.step) == (5, 5, 8)
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in full.history]
    for a, b in zip(resumed.sampler.state_dict().values(), full.sampler.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_load_sampler_gives_the_ema_diffusion_model_with_the_saved_sampler_settings(tmp_path, make_batches):
    result = train(make_batches, diffusion_config(guidance=2.0), tmp_path, "d", budget(2))
    sampler, found = load_sampler(tmp_path)
    assert isinstance(sampler, DiffusionModel) and found.version == result.version
    assert (sampler.sample_steps, sampler.guidance) == (4, 2.0)
    z, labels = torch.randn(3, 1, 32, 32), torch.tensor([0, 1, 2])
    assert torch.equal(sampler.sample(z, labels), result.sampler.eval().sample(z, labels))
    assert isinstance(diffusion_model(diffusion_config()), DiffusionModel)


def test_new_sampler_settings_reach_the_checkpoint_when_the_budget_is_already_spent(tmp_path, make_batches):
    first = train(make_batches, diffusion_config(), tmp_path, "d", budget(2))
    weights = load_sampler(tmp_path)[0].state_dict()
    again = train(make_batches, diffusion_config(sample_steps=6, guidance=2.5), tmp_path, "d", budget(2))
    assert (again.step, again.resumed_from_step, again.version) == (2, 2, first.version)
    sampler, found = load_sampler(tmp_path)
    assert (sampler.sample_steps, sampler.guidance) == (6, 2.5) and found.step == 2
    for name, value in sampler.state_dict().items():
        assert torch.equal(value, weights[name]), "the same trained weights, only the settings are new"
    written = found.path.stat().st_mtime_ns
    unchanged = train(make_batches, diffusion_config(sample_steps=6, guidance=2.5), tmp_path, "d", budget(2))
    assert unchanged.checkpoint == found.path and found.path.stat().st_mtime_ns == written, "same settings: untouched"


def test_train_gan_with_the_diffusion_family_gives_pictures_and_metrics(tmp_path, make_batches, fashion32):
    run = trained_and_measured(make_batches, diffusion_config(), tmp_path, fashion32, grid_per_class=4)
    assert run.train.step == 3 and run.checkpoint.exists()
    assert {"step", "loss"} == set(run.train.history[-1])
    assert Image.open(io.BytesIO(run.loss_curve_png)).format == "PNG"
    assert Image.open(io.BytesIO(run.sample_grid_png)).format == "PNG"
    assert {"fid", "precision", "recall", "density", "coverage"} <= set(run.metrics)
    assert run.metrics["recall"].n == 60 and run.metrics["recall"].floor is not None


def test_launch_command_trains_the_diffusion_family(tmp_path, capsys):
    argv = ["--out", str(tmp_path), "--steps", "2", "--per-class", "4", "--batch-size", "8", "--width", "4"]
    launch.main([*argv, "--threads", "1", "--family", "diffusion"])
    assert "1 process(es)" in capsys.readouterr().out
    found = list(tmp_path.glob("*/ckpt-000000002.pt"))
    assert found and isinstance(load_sampler(tmp_path)[0], DiffusionModel)
