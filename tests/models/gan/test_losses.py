"""Hinge and ELBO losses on hand-computed values."""

from __future__ import annotations

import pytest
import torch

from synthaug.models.gan.losses import d_hinge_loss, g_hinge_loss, vae_elbo_loss


def test_d_hinge_is_zero_beyond_the_margins_and_linear_inside():
    real = torch.tensor([2.0, 0.5, -1.0])
    fake = torch.tensor([-3.0, 0.0, 1.0])
    # real: relu(1-2)=0, relu(0.5)=0.5, relu(2)=2 -> mean 2.5/3 ; fake: relu(-2)=0, relu(1)=1, relu(2)=2 -> mean 1
    assert d_hinge_loss(real, fake).item() == pytest.approx(2.5 / 3 + 1.0)
    assert d_hinge_loss(torch.full((4,), 1.5), torch.full((4,), -1.5)).item() == 0.0


def test_g_hinge_is_minus_the_mean_fake_score():
    assert g_hinge_loss(torch.tensor([1.0, -3.0, 5.0])).item() == pytest.approx(-1.0)


def test_d_hinge_gradient_only_inside_the_margin():
    real = torch.tensor([2.0, 0.0], requires_grad=True)
    d_hinge_loss(real, torch.tensor([-2.0])).backward()
    assert real.grad.tolist() == [0.0, -0.5]


def test_elbo_of_a_perfect_reconstruction_with_the_prior_posterior_is_zero():
    x = torch.rand(3, 1, 4, 4)
    zeros = torch.zeros(3, 5)
    terms = vae_elbo_loss(x, x, zeros, zeros)
    assert terms.loss.item() == 0.0 and terms.kl.item() == 0.0


def test_elbo_kl_matches_the_closed_form():
    mu = torch.tensor([[1.0, 0.0]])
    logvar = torch.tensor([[0.0, torch.log(torch.tensor(4.0))]])
    terms = vae_elbo_loss(torch.ones(1, 1, 1, 1), torch.zeros(1, 1, 1, 1), mu, logvar, kl_weight=2.0)
    kl = 0.5 * (1.0 + 0.0) + 0.5 * (4.0 - 1.0 - torch.log(torch.tensor(4.0)).item())
    assert terms.kl.item() == pytest.approx(kl)
    assert terms.reconstruction.item() == pytest.approx(1.0)
    assert terms.loss.item() == pytest.approx(1.0 + 2.0 * kl)
