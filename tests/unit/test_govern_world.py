"""The synthetic teachers' error regimes and the student's stage losses, checked by hand."""

import math

import numpy as np
import pytest
import torch

from components.govern import student as st
from components.govern import world
from components.govern.params import GovernDataParams, GovernParams

SIZES = {"unlabeled": 20_000, "test": 10}


@pytest.mark.parametrize("regime", ["heavy", "regional"])
def test_a_fifth_of_the_errors_are_large(regime):
    split = world.make_world(GovernDataParams(regime=regime, sizes=SIZES))["unlabeled"]
    large = np.abs(split.teachers - split.truth[:, None]) >= 3
    assert large.mean(axis=0) == pytest.approx([0.2] * 5, abs=0.015)


def test_regional_errors_have_one_sign_per_teacher_and_heavy_ones_do_not():
    def signs(regime):
        split = world.make_world(GovernDataParams(regime=regime, sizes=SIZES))["unlabeled"]
        error = split.teachers - split.truth[:, None]
        return [set(np.sign(e[np.abs(e) >= 3]).tolist()) for e in error.T]

    assert all(len(s) == 1 for s in signs("regional"))
    assert all(s == {-1.0, 1.0} for s in signs("heavy"))


def zero_student() -> torch.nn.Module:
    model = st.build_student(2, 4)
    for parameter in model.parameters():
        torch.nn.init.zeros_(parameter)
    return model  # predicts 0 everywhere


def test_the_supervised_baseline_is_bce_plus_kd_to_the_mean():
    batch = st.as_batch(np.zeros((1, 2)), np.array([[1.0, 3.0]]), np.array([1]))
    loss = st.supervised_stage_loss(GovernParams(lambda_kd=0.5), "mean_kd")(zero_student(), batch)
    # BCE(0, 1) = ln 2; the mean teacher is 2: 0.5 * (0 - 2)^2 = 2
    assert loss.item() == pytest.approx(math.log(2) + 2.0)


def test_aekd_weighs_the_nearer_teacher_fully():
    # residuals of the student (0) to teachers 1 and 3 are parallel: the min-norm point is all on
    # the nearer teacher, so the loss is teacher 1's alone, (0 - 1)^2 = 1
    batch = st.as_batch(np.zeros((1, 2)), np.array([[1.0, 3.0]]), np.array([1]))
    loss = st.label_free_loss("aekd", GovernParams(), 0)(zero_student(), batch)
    assert loss.item() == pytest.approx(1.0, abs=1e-3)


def test_majority_membership_by_hand():
    from components.govern.evaluate_step import majority_membership
    from components.govern.samples import Split

    # against a student at 0: (1, 2, -1) votes (+, +, -): the first two are the majority;
    # (1, -1) ties: nobody is
    test = Split(np.zeros((2, 1)), np.array([[1.0, 2, -1], [1, -1, 0]]), np.zeros(2), np.zeros(0))
    member = majority_membership(test, np.zeros(2), eps=0.0)
    assert member.tolist() == [[True, True, False], [False, False, False]]
