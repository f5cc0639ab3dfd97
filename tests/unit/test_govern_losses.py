"""GOVERN's vote and the baselines' targets, by hand.

One sample, teachers (1, 2, 3, -1, 5), student 0: orientations (+, +, +, -, +), vote +3, so the
majority is {1, 2, 3, 5}: mean_majority (1+2+3+5)/4 = 2.75, nearest_majority 1, median_all 2."""

from __future__ import annotations

import math

import pytest
import torch

from components.govern import losses

T = torch.tensor


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("mean_majority", 2.75), ("nearest_majority", 1.0), ("median_all", 2.0)],
)
def test_majority_target_by_hand(mode, expected):
    target = losses.majority_target(T([[1.0, 2, 3, -1, 5]]), T([0.0]), target_mode=mode)
    assert target.item() == pytest.approx(expected)


def test_orientations_with_a_dead_zone():
    # |t - s| <= eps votes 0: (0.05, 0.1, -1) against 0 with eps 0.1 is (0, 0, -1)
    votes = losses.orientations(T([[0.05, 0.1, -1.0]]), T([0.0]), eps=0.1)
    assert votes.tolist() == [[0.0, 0.0, -1.0]]


def test_the_dead_zone_changes_the_majority():
    teachers, student = T([[0.05, 0.1, -1.0]]), T([0.0])
    # without it, (+, +, -): the two small ones win, mean 0.075; with it only -1 votes
    assert losses.majority_target(teachers, student).item() == pytest.approx(0.075)
    assert losses.majority_target(teachers, student, eps=0.1).item() == pytest.approx(-1.0)


@pytest.mark.parametrize(("tie_mode", "expected"), [("mean_all", 0.0), ("skip", 0.5)])
def test_a_tie(tie_mode, expected):
    # (1, 2, -1, -2) against 0.5: (+, +, -, -), vote 0; mean_all 0, skip: the student itself
    target = losses.majority_target(T([[1.0, 2, -1, -2]]), T([0.5]), tie_mode=tie_mode)
    assert target.item() == pytest.approx(expected)


def test_every_teacher_on_one_side_is_mean_kd():
    assert losses.majority_target(T([[1.0, 2, 3]]), T([0.0])).item() == pytest.approx(2.0)


def test_the_target_carries_no_gradient():
    student = T([0.0], requires_grad=True)
    assert not losses.majority_target(T([[1.0, 2, 3]]), student).requires_grad


def test_even_median_is_the_mean_of_the_middle_two():
    assert losses.median(T([[1.0, 2, 3, 10]])).item() == pytest.approx(2.5)


def test_confidence_weighted_by_hand():
    # weights |t|: (1*1 + 3*(-3)) / (1 + 3) = -2; all zero: the mean
    assert losses.confidence_weighted(T([[1.0, -3]])).item() == pytest.approx(-2.0)
    assert losses.confidence_weighted(T([[0.0, 0.0]])).item() == 0.0


@pytest.mark.parametrize(
    ("teachers", "student", "label", "expected"),
    [
        # logit(0.95) = 2.944 > 0 pushes up: teachers 2 and 3 agree
        ([[2.0, -1, 3]], 0.0, 1, 2.5),
        # logit(0.05) < 0 pushes down: only -1 agrees
        ([[2.0, -1, 3]], 0.0, 0, -1.0),
        # pushes down from 3, but both teachers are above it: the smoothed label's logit
        ([[4.0, 5]], 3.0, 0, math.log(0.05 / 0.95)),
    ],
)
def test_label_agreeing_target_by_hand(teachers, student, label, expected):
    target = losses.label_agreeing_target(T(teachers), T([student]), T([label]))
    assert target.item() == pytest.approx(expected, abs=1e-5)


def test_supervised_loss_by_hand():
    # BCE(0, 1) = ln 2; the target is 2.5, so (0 - 2.5)^2 = 6.25; lambda_kd 2 doubles it
    loss = losses.supervised_loss(T([0.0]), T([[2.0, -1, 3]]), T([1]), lambda_kd=2.0)
    assert loss.item() == pytest.approx(math.log(2) + 12.5, abs=1e-5)


def test_distillation_losses_by_hand():
    assert losses.distillation_loss(T([1.0, 0]), T([3.0, 0])).item() == pytest.approx(2.0)
    # BCE(sigmoid(0), sigmoid(0)) = ln 2
    bce = losses.distillation_loss(T([0.0]), T([0.0]), loss="bce")
    assert bce.item() == pytest.approx(math.log(2))


def test_capped_simplex_projection_by_hand():
    # (2, 0, 0) - tau clipped to [0, 0.6] sums to 1 at tau = -0.2: (0.6, 0.2, 0.2)
    projected = losses.capped_simplex_projection([2.0, 0, 0], cap=0.6)
    assert projected.tolist() == pytest.approx([0.6, 0.2, 0.2], abs=1e-6)
    # no cap: (2, 0, 0) - 1 = (1, 0, 0); (0.5, 0.5, 0.2) sums to 1.2, all stay positive, so
    # tau = 0.2 / 3: (13/30, 13/30, 4/30)
    assert losses.capped_simplex_projection([2.0, 0, 0], 1.0).tolist() == [1.0, 0.0, 0.0]
    projected = losses.capped_simplex_projection([0.5, 0.5, 0.2], 1.0)
    assert projected.tolist() == pytest.approx([13 / 30, 13 / 30, 4 / 30])
    with pytest.raises(ValueError, match="cannot sum to 1"):
        losses.capped_simplex_projection([1.0, 0], cap=0.4)


@pytest.mark.parametrize(
    ("gradients", "cap", "expected"),
    [
        # orthogonal unit gradients: the min-norm point is the middle
        ([[1.0, 0], [0, 1]], 1.0, [0.5, 0.5]),
        # parallel, lengths 1 and 3: all weight on the shorter, or the cap's 0.8 of it
        ([[1.0, 0], [3, 0]], 1.0, [1.0, 0.0]),
        ([[1.0, 0], [3, 0]], 0.8, [0.8, 0.2]),
    ],
)
def test_min_norm_weights_by_hand(gradients, cap, expected):
    g = T(gradients, dtype=torch.float64)
    weights = losses.min_norm_weights(g @ g.T, cap, steps=2000)
    assert weights.tolist() == pytest.approx(expected, abs=1e-3)


@pytest.mark.parametrize(("mode", "expected"), [("mean_majority", 1.0), ("nearest_majority", 2.0)])
def test_where_the_vote_drives_one_student(mode, expected):
    """mean_majority reaches the median teacher (1); nearest_majority, coming from 5, stops at the
    first majority teacher it meets (2): approached from above, 2 stays in the majority, and it
    is its own target, so the student never crosses it."""
    teachers = T([[-5.0, 0, 1, 2, 10]])  # median 1; mean 1.6
    student = T([5.0], requires_grad=True)
    optimizer = torch.optim.SGD([student], lr=0.01)
    for _ in range(3000):
        target = losses.majority_target(teachers, student, target_mode=mode)
        loss = losses.distillation_loss(student, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert student.item() == pytest.approx(expected, abs=0.1)
