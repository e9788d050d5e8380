"""The GAN coverage levers (issue 20): the minibatch-std channel of the discriminator, the mode-seeking term of the
generator, LeCam regularisation of the discriminator, mirrored real images, and their place in the checkpoint version
key."""

from __future__ import annotations

import pytest
import torch

from synthaug.models.gan.config import TrainConfig
from synthaug.models.gan.losses import LeCamAnchors, mode_seeking_loss
from synthaug.models.gan.networks import Discriminator, minibatch_std_channel
from synthaug.models.gan.training import mirrored, train, version_for
from tests.models.gan.helpers import TINY, budget, tiny_config


@pytest.mark.parametrize("batch", [1, 2, 5, 7, 8])
def test_minibatch_std_is_one_channel_for_any_batch_size(batch):
    x = torch.randn(batch, 6, 4, 4)
    out = minibatch_std_channel(x)
    assert out.shape == (batch, 1, 4, 4) and torch.isfinite(out).all()
    if batch == 1:
        assert out.abs().max() < 1e-3


def test_minibatch_std_measures_the_spread_within_each_group():
    same = torch.randn(1, 6, 4, 4).expand(4, -1, -1, -1)
    assert minibatch_std_channel(same).abs().max() < 1e-3
    assert minibatch_std_channel(torch.randn(4, 6, 4, 4)).min() > 0.5


@pytest.mark.parametrize("batch", [1, 3, 6])
def test_discriminator_with_minibatch_std_feeds_its_last_conv_one_more_channel(batch):
    plain, with_std = Discriminator(TINY), Discriminator(TINY, minibatch_std=True)
    assert with_std.convs[-1].in_channels == plain.convs[-1].in_channels + 1
    y = torch.arange(batch) % TINY.num_classes
    logits = with_std(torch.randn(batch, 1, 32, 32), y)
    assert logits.shape == (batch,)
    logits.sum().backward()
    assert all(p.grad is not None for p in with_std.convs[-1].parameters())


def test_reals_and_fakes_are_grouped_apart():
    d = Discriminator(TINY, minibatch_std=True).eval()
    collapsed = torch.randn(1, 1, 32, 32).expand(4, -1, -1, -1)
    both, y = torch.cat([torch.randn(4, 1, 32, 32), collapsed]), torch.zeros(8, dtype=torch.long)
    alone = d(collapsed, y[:4])
    assert torch.allclose(d(both, y, segments=2)[4:], alone, atol=1e-5)
    assert not torch.allclose(d(both, y)[4:], alone, atol=1e-5)


def test_levers_change_the_version_key_only_when_on():
    plain = tiny_config()
    assert "minibatch_std" not in plain.version_dict() and "mode_seeking" not in plain.version_dict()
    levers = (tiny_config(minibatch_std=True), tiny_config(mode_seeking=1.0), tiny_config(lecam_weight=0.3))
    levers += (tiny_config(mirror=True), tiny_config(family="vae", mirror=True))
    assert len({version_for("d", c) for c in (plain, *levers)}) == 6
    vae = tiny_config(family="vae")
    assert version_for("d", vae) == version_for("d", tiny_config(family="vae", mode_seeking=1.0))


def test_a_config_written_before_the_levers_still_loads():
    old = tiny_config().to_dict()
    del old["minibatch_std"], old["mode_seeking"], old["lecam_weight"], old["mirror"]
    assert TrainConfig.from_dict(old) == tiny_config()


def test_invalid_lever_values_are_refused():
    with pytest.raises(ValueError, match="mode_seeking"):
        tiny_config(mode_seeking=-1.0)
    with pytest.raises(ValueError, match="minibatch_std"):
        tiny_config(minibatch_std=2)
    with pytest.raises(ValueError, match="lecam_weight"):
        tiny_config(lecam_weight=-0.1)


def test_mode_seeking_loss_is_finite_and_pushes_the_images_apart():
    fake = torch.randn(8, 1, 8, 8, requires_grad=True)
    z = torch.randn(8, 4)
    loss = mode_seeking_loss(*fake.chunk(2), *z.chunk(2))
    assert torch.isfinite(loss)
    loss.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    with torch.no_grad():
        spread = fake + 0.1 * torch.cat([fake[:4] - fake[4:], fake[4:] - fake[:4]])
    assert mode_seeking_loss(*spread.chunk(2), *z.chunk(2)) < loss


def test_training_with_both_levers_logs_the_term_and_resumes(tmp_path, make_batches):
    config = tiny_config(minibatch_std=True, mode_seeking=0.5)
    first = train(make_batches, config, tmp_path, "d", budget(3))
    assert all(torch.isfinite(torch.tensor(row["g_mode_seeking"])) for row in first.history)
    again = train(make_batches, config, tmp_path, "d", budget(4))
    assert again.resumed_from_step == 3 and again.step == 4


def test_lecam_penalises_scores_past_the_other_sides_running_mean():
    anchors = LeCamAnchors(decay=0.5)
    assert anchors.penalty(torch.tensor([-1.0]), torch.tensor([1.0])) == 0  # both EMAs start at 0
    assert anchors.state_dict() == {"real": -0.5, "fake": 0.5}
    apart = anchors.penalty(torch.tensor([3.0, 3.0]), torch.tensor([-3.0, -3.0]))
    close = LeCamAnchors(decay=0.5)
    close.load_state_dict({"real": -0.5, "fake": 0.5})
    assert apart == (3 - 0.5) ** 2 + (-0.5 + 3) ** 2
    assert close.penalty(torch.tensor([0.6]), torch.tensor([-0.6])) < apart


def test_training_with_lecam_logs_the_term_and_resumes_exactly(tmp_path, make_batches):
    config = tiny_config(lecam_weight=0.3)
    straight = train(make_batches, config, tmp_path / "straight", "d", budget(4))
    assert all(row["d_lecam"] >= 0 for row in straight.history)
    train(make_batches, config, tmp_path / "resumed", "d", budget(2))
    resumed = train(make_batches, config, tmp_path / "resumed", "d", budget(4))
    assert resumed.resumed_from_step == 2
    assert resumed.history[-1]["d_lecam"] == pytest.approx(straight.history[-1]["d_lecam"], rel=1e-5)


def test_mirrored_flips_about_half_the_garments_and_keeps_the_rest(fashion32):
    x = fashion32[0][:200]
    torch.manual_seed(0)
    out = mirrored(x)
    flipped = [torch.equal(o, i.flip(-1)) and not torch.equal(o, i) for o, i in zip(out, x, strict=True)]
    kept = [torch.equal(o, i) for o, i in zip(out, x, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 70 <= sum(flipped) <= 130  # each image with probability 1/2
    torch.manual_seed(0)
    assert torch.equal(mirrored(x), out)


def test_training_on_mirrored_images_resumes_exactly(tmp_path, make_batches):
    config = tiny_config(mirror=True)
    straight = train(make_batches, config, tmp_path / "straight", "d", budget(4))
    train(make_batches, config, tmp_path / "resumed", "d", budget(2))
    resumed = train(make_batches, config, tmp_path / "resumed", "d", budget(4))
    assert resumed.resumed_from_step == 2
    assert resumed.history[-1]["d_loss"] == pytest.approx(straight.history[-1]["d_loss"], rel=1e-5)
