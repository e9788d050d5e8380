"""The training loop on real images: budgets, exact resume after a crash, fallback past a truncated checkpoint,
progress reports, bad input, and the VAE family."""

from __future__ import annotations

import pytest
import torch

from synthaug.models.gan import checkpoints
from synthaug.models.gan.config import Budget, TrainConfig, describe_progress
from synthaug.models.gan.training import train
from tests.models.gan.helpers import TINY, budget, tiny_config


def _losses(history: list[dict], steps: range) -> list[tuple[float, float]]:
    by_step = {int(row["step"]): row for row in history}
    return [(by_step[s]["d_loss"], by_step[s]["g_loss"]) for s in steps]


def test_resume_after_a_crash_continues_exactly_like_an_uninterrupted_run(tmp_path, make_batches):
    config = tiny_config()
    full = train(make_batches, config, tmp_path / "a", "data-1", budget(16, every=7))
    assert full.step == 16 and full.stopped_by == "steps" and full.resumed_from_step is None

    # the "crashed" run got to step 7 (its checkpoint) and died; a new call resumes from there
    first = train(make_batches, config, tmp_path / "b", "data-1", budget(7, every=7))
    assert first.step == 7
    resumed = train(make_batches, config, tmp_path / "b", "data-1", budget(16, every=7))
    assert resumed.resumed_from_step == 7 and resumed.step == 16
    assert _losses(resumed.history, range(1, 17)) == _losses(full.history, range(1, 17))
    assert resumed.version == full.version
    # the epoch boundary (12 batches per epoch) was crossed after the resume: data order was restored too
    for a, b in zip(resumed.sampler.parameters(), full.sampler.parameters(), strict=True):
        assert torch.equal(a, b)


def test_truncated_newest_checkpoint_restarts_from_the_previous_good_one(tmp_path, make_batches):
    config = tiny_config()
    result = train(make_batches, config, tmp_path, "d", budget(6, every=3))
    newest = checkpoints.list_checkpoints(tmp_path, result.version)[-1]
    newest.write_bytes(newest.read_bytes()[:-500])
    again = train(make_batches, config, tmp_path, "d", budget(6, every=3))
    assert again.resumed_from_step == 3 and again.step == 6
    assert again.skipped_checkpoints[0][0] == newest
    assert checkpoints.load_latest(tmp_path, result.version).step == 6


def test_a_finished_budget_trains_no_further_and_other_data_starts_over(tmp_path, make_batches):
    config = tiny_config()
    done = train(make_batches, config, tmp_path, "d", budget(3))
    again = train(make_batches, config, tmp_path, "d", budget(3))
    assert again.resumed_from_step == 3 and again.step == 3 and again.checkpoint == done.checkpoint
    other = train(make_batches, config, tmp_path, "other-data", budget(2))
    assert other.resumed_from_step is None and other.version != done.version


def test_minutes_budget_stops_and_progress_reports_losses_rate_and_eta(tmp_path, make_batches):
    seen = []
    result = train(make_batches, tiny_config(), tmp_path, "d", budget(None, minutes=0.02), progress=seen.append)
    assert result.stopped_by == "minutes" and result.step > 0
    assert seen and seen[-1].step == result.step and seen[-1].eta_s == 0.0
    assert {"d_loss", "g_loss"} <= set(seen[0].losses) and seen[0].images_per_s > 0
    assert describe_progress(seen[0]).startswith(f"step {seen[0].step:,}")


def test_a_budget_reads_as_words_in_the_log():
    assert Budget(minutes=4.0).describe() == "4 minutes, a checkpoint every 500 steps"
    assert (
        Budget(steps=2000, minutes=0.5, checkpoint_every=1000).describe()
        == "0.5 minutes or 2,000 steps (whichever comes first), a checkpoint every 1,000 steps"
    )


def test_no_batches_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no batches"):
        train(lambda epoch: [], tiny_config(), tmp_path, "d", budget(2))


def test_unlabeled_images_in_a_conditional_model_are_refused(tmp_path, fashion32):
    x, _ = fashion32
    batches = [(x[:8], torch.full((8,), -1))]
    with pytest.raises(ValueError, match="labeled_only"):
        train(batches, tiny_config(), tmp_path, "d", budget(1))


def test_unconditional_gan_and_single_class_train(tmp_path, fashion32):
    x, y = fashion32
    uncond = tiny_config(model=TrainConfig().model.__class__(**{**TINY.to_dict(), "num_classes": 0}))
    result = train([(x[:16], torch.full((16,), -1))], uncond, tmp_path, "d", budget(2))
    assert result.step == 2 and result.sampler.sample(3).shape == (3, 1, 32, 32)
    single = tiny_config(model=TrainConfig().model.__class__(**{**TINY.to_dict(), "num_classes": 1}))
    result = train([(x[:16], torch.zeros(16, dtype=torch.long))], single, tmp_path, "d", budget(2))
    assert result.step == 2


def test_vae_family_trains_and_its_loss_falls(tmp_path, make_batches):
    result = train(make_batches, tiny_config(family="vae", lr_g=2e-3), tmp_path, "d", budget(24, every=100))
    first, last = result.history[0]["loss"], result.history[-1]["loss"]
    assert last < first
    assert result.sampler.sample(4, torch.tensor([0, 1, 2, 0])).shape == (4, 1, 32, 32)


def test_auxiliary_class_loss_is_logged_and_teaches_the_discriminator_the_classes(tmp_path, make_batches, fashion32):
    plain = train(make_batches, tiny_config(), tmp_path / "plain", "d", budget(2))
    assert "d_class" not in plain.history[-1]
    with pytest.raises(ValueError, match="aux_class_weight"):
        tiny_config(aux_class_weight=-1.0)
    result = train(make_batches, tiny_config(aux_class_weight=1.0, lr_d=2e-3), tmp_path / "aux", "d", budget(30))
    first, last = result.history[0], result.history[-1]
    assert {"d_class", "g_class"} <= set(last)
    assert last["d_class"] < first["d_class"]  # the class head learns the real images' classes
