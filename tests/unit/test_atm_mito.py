"""The MITO loss by hand: one answer position, two-token vocabulary.

Clean logits (0, 0): p = (1/2, 1/2). Attacked logits (0, ln 3): p = (1/4, 3/4). The answer token
is 1. CE on the attacked branch = -ln(3/4) = 0.287682; on the clean one ln 2 = 0.693147.
KL(clean || adv) = 1/2 ln 2 + 1/2 ln(2/3) = 0.143841; KL(adv || clean) = 1/4 ln(1/2) +
3/4 ln(3/2) = 0.130812."""

from __future__ import annotations

import math

import pytest
import torch

from components.atm.mito import MitoConfig, mito_loss

LABELS = torch.tensor([[-100, -100, 1]])  # shifted: logits at position 1 predict token 1


def logits(last: tuple[float, float]) -> torch.Tensor:
    # position 0 differs between the branches but predicts a prompt token: it must not count
    return torch.tensor([[[5.0, -5.0], list(last), [9.0, 0.0]]], requires_grad=True)


CLEAN, ADV = logits((0.0, 0.0)), logits((0.0, math.log(3)))


@pytest.mark.parametrize(
    ("config", "ce", "kl"),
    [
        (MitoConfig(), 0.287682, 0.143841),
        (MitoConfig(sft_branch="clean"), 0.693147, 0.143841),
        (MitoConfig(sft_branch="both"), (0.287682 + 0.693147) / 2, 0.143841),
        (MitoConfig(kl_target="adv"), 0.287682, 0.130812),
        (MitoConfig(kl_norm="code_batchmean"), 0.287682, 0.143841 / 2),  # B x T = 1 x 2
    ],
)
def test_loss_by_hand(config, ce, kl):
    adv = logits((0.0, math.log(3))) if config.kl_target == "adv" else ADV
    clean = torch.tensor([[[-5.0, 5.0], [0.0, 0.0], [0.0, 9.0]]])
    loss, parts = mito_loss(clean, adv, LABELS, config)
    assert parts["ce"] == pytest.approx(ce, abs=1e-5)
    assert parts["kl"] == pytest.approx(kl, abs=1e-5)
    assert float(loss.detach()) == pytest.approx(ce + 0.2 * kl, abs=1e-5)


def test_identical_branches_have_no_kl_and_beta_zero_is_plain_ce():
    loss, parts = mito_loss(CLEAN, CLEAN, LABELS, MitoConfig(beta=0.0))
    assert parts["kl"] == pytest.approx(0.0, abs=1e-7)
    assert float(loss.detach()) == pytest.approx(math.log(2), abs=1e-6)


def test_stopgrad_keeps_the_target_branch_out_of_the_kl_gradient():
    clean, adv = logits((0.0, 0.0)), logits((0.0, math.log(3)))
    loss, _ = mito_loss(clean, adv, LABELS, MitoConfig(stopgrad_target=True))
    loss.backward()
    assert clean.grad is None or float(clean.grad.abs().sum()) == 0.0
    clean, adv = logits((0.0, 0.0)), logits((0.0, math.log(3)))
    loss, _ = mito_loss(clean, adv, LABELS, MitoConfig())
    loss.backward()
    assert float(clean.grad.abs().sum()) > 0  # both branches get gradient by default
