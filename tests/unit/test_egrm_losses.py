"""The hybrid regression-ranking loss against hand computations."""

import pytest
import torch

from components.grm_scorer.losses import hybrid_loss, pairwise_accuracy, preference_pairs

# two prompts: group 0 has three paths, group 1 two
SCORES = torch.tensor([0.9, 0.5, 0.6, 0.2, 0.3])
LABELS = torch.tensor([1.0, 0.5, 0.0, 1.0, 0.0])
GROUPS = torch.tensor([0, 0, 0, 1, 1])


def test_pairs_stay_within_prompts():
    i, j = preference_pairs(LABELS, GROUPS)
    assert sorted(zip(i.tolist(), j.tolist(), strict=True)) == [(0, 1), (0, 2), (1, 2), (3, 4)]


def test_hybrid_loss_matches_hand_computation():
    # Huber with delta=1 on |d| <= 1 is 0.5 d^2; d = s - q
    diffs = [-0.1, 0.0, 0.6, -0.8, 0.3]
    huber = sum(0.5 * d * d for d in diffs) / 5
    # hinge max(0, 0.1 - (s_i - s_j)) over pairs (0,1) (0,2) (1,2) (3,4)
    hinges = [max(0, 0.1 - 0.4), max(0, 0.1 - 0.3), max(0, 0.1 + 0.1), max(0, 0.1 + 0.1)]
    expected = 0.7 * huber + 0.3 * sum(hinges) / 4
    got = hybrid_loss(SCORES, LABELS, GROUPS, w_reg=0.7, w_rank=0.3, delta=1.0, margin=0.1)
    assert float(got) == pytest.approx(expected, abs=1e-6)


def test_delta_one_is_half_mse_on_unit_interval():
    generator = torch.Generator().manual_seed(0)
    scores, labels = torch.rand(64, generator=generator), torch.rand(64, generator=generator)
    groups = torch.zeros(64, dtype=torch.long)
    huber = hybrid_loss(scores, labels, groups, w_reg=1.0, w_rank=0.0, delta=1.0)
    mse = hybrid_loss(scores, labels, groups, w_reg=1.0, w_rank=0.0, regression="mse")
    assert float(huber) == pytest.approx(0.5 * float(mse), rel=1e-6)
    # a small delta is real Huber: linear beyond delta, so it differs from 0.5 * MSE
    assert float(
        hybrid_loss(scores, labels, groups, w_reg=1, w_rank=0, delta=0.1)
    ) != pytest.approx(0.5 * float(mse), rel=1e-3)


def test_single_loss_variants_and_no_pairs():
    hinge_only = hybrid_loss(SCORES, LABELS, GROUPS, w_reg=0.0, w_rank=1.0)
    assert float(hinge_only) == pytest.approx((0 + 0 + 0.2 + 0.2) / 4)
    flat = torch.tensor([0.5, 0.5])
    no_pairs = hybrid_loss(flat, flat, torch.tensor([0, 1]), w_reg=0.0, w_rank=1.0)
    assert float(no_pairs) == 0.0
    scores = SCORES.clone().requires_grad_()
    hybrid_loss(scores, LABELS, GROUPS).backward()
    assert scores.grad is not None and torch.isfinite(scores.grad).all()


def test_pairwise_accuracy_counts_ties_half():
    assert pairwise_accuracy(SCORES, LABELS, GROUPS) == pytest.approx(2 / 4)
    tied = torch.tensor([0.5, 0.5, 0.5, 0.5, 0.5])
    assert pairwise_accuracy(tied, LABELS, GROUPS) == pytest.approx(0.5)
