"""EPI's core formulas pinned by hand-computed values: each test fails on a named mutation.

- the importance EMA is fed the raw gradient, before clipping (not after);
- per-tensor normalisation is `mean` (S = F / (mean F + eps)), not `max`;
- CPI's cores of finished stages are frozen (mixed probes and sequential update cores);
- a mask refresh, global and per_layer, on a hand-computed example: which entries are isolated,
  which released, and what happens to their values and gradients under `final_delta`.

Two eligible tensors A (4 entries) and B (3 entries) stand in for a model's block weights.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from transformers import TrainerState

from components.epi_finetune.engine import ParameterIsolation
from components.epi_finetune.methods import isolation_config
from components.epi_finetune.monitors import StageHooks
from components.epi_finetune.optimizer import IsolatingOptimizer
from components.epi_finetune.params import FinetuneParams, IsolationConfig
from components.epi_finetune.schedule import TrainingPlan
from components.epi_finetune.selection import normalise_scores
from components.epi_finetune.trainer_hooks import IsolationCallback


def tensors() -> list[tuple[str, torch.nn.Parameter]]:
    return [("A", torch.nn.Parameter(torch.ones(4))), ("B", torch.nn.Parameter(torch.ones(3)))]


def isolating_sgd(
    named, config: IsolationConfig, lr: float, weight_decay: float = 0.0, max_grad_norm=None
) -> IsolatingOptimizer:
    sgd = torch.optim.SGD([p for _, p in named], lr=lr, weight_decay=weight_decay)
    return IsolatingOptimizer(sgd, ParameterIsolation(named, config), max_grad_norm=max_grad_norm)


def set_grads(named, *grads: list[float]) -> None:
    for (_, p), g in zip(named, grads, strict=True):
        p.grad = torch.tensor(g)


def isolated(engine: ParameterIsolation) -> dict[str, list[int]]:
    return {n: i.tolist() for n, i in zip(engine.names, engine.indices, strict=True)}


# ---- the EMA sees the raw gradient, before clipping -----------------------------------------


def test_ema_is_fed_the_gradient_before_clipping():
    """beta 0.75, one step, g_A = [3, 4, 0, 0] (norm 5), g_B = 0, clipping at norm 1.

    EMA = (1 - 0.75) g^2 = [2.25, 4, 0, 0]; fed after clipping it would be 0.25 [0.36, 0.64] =
    [0.09, 0.16]. The SGD step (lr 1) still uses the clipped gradient: A = 1 - [0.6, 0.8]."""
    named = tensors()
    config = IsolationConfig(ema_beta=0.75, mask_interval=10, warmup_steps=10)  # no refresh yet
    opt = isolating_sgd(named, config, lr=1.0, max_grad_norm=1.0)
    set_grads(named, [3.0, 4.0, 0.0, 0.0], [0.0, 0.0, 0.0])
    opt.step()
    ema_a, ema_b = opt.engine.ema[None]
    assert ema_a.tolist() == pytest.approx([2.25, 4.0, 0.0, 0.0])
    assert ema_b.tolist() == [0.0, 0.0, 0.0]
    assert named[0][1].tolist() == pytest.approx([0.4, 0.2, 1.0, 1.0], abs=1e-6)


def test_trainer_clipping_moves_into_the_optimizer_after_the_ema():
    """Trainer clips before optimizer.step() (the EMA would see clipped gradients): the callback
    turns Trainer's clipping off and clips inside the wrapper instead."""
    named = tensors()
    opt = isolating_sgd(named, IsolationConfig(), lr=0.1)
    args = SimpleNamespace(max_grad_norm=1.0, output_dir="unused")
    IsolationCallback(opt).on_train_begin(args, TrainerState(), None)
    assert args.max_grad_norm == 0.0 and opt.max_grad_norm == 1.0


# ---- per-tensor normalisation: mean ----------------------------------------------------------


def test_mean_normalisation_divides_by_the_tensor_mean():
    """F = [1, 2, 3, 6]: mean 3 -> [1/3, 2/3, 1, 2] (max would give [1/6, 1/3, 1/2, 1])."""
    scores = normalise_scores(torch.tensor([1.0, 2.0, 3.0, 6.0]), "mean", 1e-12)
    assert scores.tolist() == pytest.approx([1 / 3, 2 / 3, 1.0, 2.0])
    assert IsolationConfig().norm == "mean"  # the spec's default


# ---- the mask refresh, by hand ----------------------------------------------------------------
#
# beta 0.75, K = 1, T0 = 1 (a refresh at every step), p = 0.3: global k = round(0.3 * 7) = 2;
# per_layer k_A = round(0.3 * 4) = 1, k_B = round(0.3 * 3) = 1. SGD lr 0.1, weight decay 0.1
# (update -0.1 (g + 0.1 w)), every weight starts at 1.
#
# step 1: g_A = [5, 4, 1, 0], g_B = [4, 3, 3]
#   F = 0.25 g^2: A [6.25, 4, 0.25, 0] (mean 2.625)  B [4, 2.25, 2.25] (mean 17/6)
#   S = F / mean: A [2.381, 1.524, 0.095, 0]       B [1.412, 0.794, 0.794]
#   global top-2: A0 (2.381), A1 (1.524); next is B0 (1.412)            -> M1 = {A0, A1}
#   per_layer:    A0, B0                                                 -> M1 = {A0, B0}
#   (max normalisation, S = F / max F: A [1, 0.64, 0.04, 0], B [1, 0.5625, 0.5625]:
#    global top-2 = {A0, B0}, not mean's {A0, A1})
# step 2: g_A = [0, 0, 0, 6], g_B = [0, 0, 0]
#   F = 0.75 F + 0.25 g^2: A [4.6875, 3, 0.1875, 9] (mean 4.21875)
#                          B [3, 1.6875, 1.6875] (mean 2.125)
#   S:                     A [1.111, 0.711, 0.044, 2.133]   B [1.412, 0.794, 0.794]
#   global top-2: A3 (2.133), B0 (1.412); next A0 (1.111)               -> M2 = {A3, B0}
#     released {A0, A1}, added {A3, B0}, Jaccard(M1, M2) = 0
#   per_layer: A3, B0 -> M2 = {A3, B0}: released {A0}, added {A3}, kept {B0}: Jaccard 1/3
#
# Weights (final_delta: an isolated entry keeps its value through the whole SGD step, weight
# decay included; its gradient is left as it was):
#   step 1, global M1 = {A0, A1}: A [1, 1, 1 - 0.1 (1 + 0.1), 1 - 0.1 (0 + 0.1)] = [1, 1, .89, .99]
#                                 B [1 - 0.1 (4.1), 1 - 0.1 (3.1), same] = [.59, .69, .69]
#   step 2, global M2 = {A3, B0}: A [.99, .99, .89 - 0.1 (0.089), .99] = [.99, .99, .8811, .99]
#                                 B [.59, .69 - 0.0069, same] = [.59, .6831, .6831]

STEP_1 = ([5.0, 4.0, 1.0, 0.0], [4.0, 3.0, 3.0])
STEP_2 = ([0.0, 0.0, 0.0, 6.0], [0.0, 0.0, 0.0])


def refresh_run(selection: str, norm: str = "mean"):
    named = tensors()
    config = IsolationConfig(
        iso_ratio=0.3, mask_interval=1, warmup_steps=1, ema_beta=0.75, selection=selection,
        norm=norm,
    )  # fmt: skip
    opt = isolating_sgd(named, config, lr=0.1, weight_decay=0.1)
    return named, opt


def test_global_refresh_isolates_releases_and_protects_by_hand():
    named, opt = refresh_run("global")
    (_, a), (_, b) = named
    set_grads(named, *STEP_1)
    opt.step()
    assert isolated(opt.engine) == {"A": [0, 1], "B": []}
    assert a.tolist() == pytest.approx([1.0, 1.0, 0.89, 0.99], abs=1e-6)
    assert a[:2].tolist() == [1.0, 1.0]  # bit-identical, though gradient and decay are nonzero
    assert b.tolist() == pytest.approx([0.59, 0.69, 0.69], abs=1e-6)
    assert a.grad.tolist() == STEP_1[0]  # final_delta leaves the gradient alone

    set_grads(named, *STEP_2)
    opt.step()
    ema_a, ema_b = opt.engine.ema[None]
    assert ema_a.tolist() == pytest.approx([4.6875, 3.0, 0.1875, 9.0])
    assert ema_b.tolist() == pytest.approx([3.0, 1.6875, 1.6875])
    assert isolated(opt.engine) == {"A": [3], "B": [0]}
    stats = opt.engine.history[-1]
    assert (stats["released"], stats["added"], stats["jaccard_prev"]) == (2, 2, 0.0)
    # released A0, A1 move again (decay only: 1 - 0.1 * 0.1); A3 and B0 are now held
    assert a.tolist() == pytest.approx([0.99, 0.99, 0.8811, 0.99], abs=1e-6)
    assert b.tolist() == pytest.approx([0.59, 0.6831, 0.6831], abs=1e-6)
    assert b.grad.tolist() == STEP_2[1]


def test_per_layer_refresh_by_hand():
    """per_layer M1 = {A0, B0}: A [1, 1 - 0.1 (4.1), .89, .99] = [1, .59, .89, .99],
    B [1, .69, .69]. Step 2: M2 = {A3, B0}; A0 released: 1 - 0.1 (0 + 0.1) = .99;
    A1 .59 - 0.1 (.059) = .5841; A2 .8811; A3 held at .99; B0 held at 1; B1, B2 .6831."""
    named, opt = refresh_run("per_layer")
    (_, a), (_, b) = named
    set_grads(named, *STEP_1)
    opt.step()
    assert isolated(opt.engine) == {"A": [0], "B": [0]}
    assert a.tolist() == pytest.approx([1.0, 0.59, 0.89, 0.99], abs=1e-6)
    assert b.tolist() == pytest.approx([1.0, 0.69, 0.69], abs=1e-6)
    set_grads(named, *STEP_2)
    opt.step()
    assert isolated(opt.engine) == {"A": [3], "B": [0]}
    stats = opt.engine.history[-1]
    assert (stats["released"], stats["added"]) == (1, 1)
    assert stats["jaccard_prev"] == pytest.approx(1 / 3)
    assert a.tolist() == pytest.approx([0.99, 0.5841, 0.8811, 0.99], abs=1e-6)
    assert b.tolist() == pytest.approx([1.0, 0.6831, 0.6831], abs=1e-6)


def test_max_normalisation_would_pick_another_mask():
    """The example's step 1 under norm=max: {A0, B0} (see the comment above), so the default
    mean's {A0, A1} is not an accident of the data."""
    named, opt = refresh_run("global", norm="max")
    set_grads(named, *STEP_1)
    opt.step()
    assert isolated(opt.engine) == {"A": [0], "B": [0]}


# ---- CPI: cores of finished stages are frozen -------------------------------------------------


def two_stage_plan() -> TrainingPlan:
    return TrainingPlan(
        order=[], stage_of_step=[0, 0, 1, 1], task_of_step=[None] * 4, stages=[("a",), ("b",)]
    )


def cpi_engine(named) -> ParameterIsolation:
    return ParameterIsolation(named, isolation_config(FinetuneParams(method="cpi")))


def at_step(step: int) -> TrainerState:
    state = TrainerState()
    state.global_step = step
    return state


def test_cpi_freezes_the_core_of_the_finished_stage():
    """Mixed CPI: cores given by the probes. Stage 0 (steps 0, 1) trains everything; at the
    first step of stage 1 the core of stage 0 ({A1, B2}) is frozen: an SGD step (lr 1,
    g = 1 everywhere) leaves A1 and B2 at 1 and moves every other entry to 0."""
    named = tensors()
    core_0 = [torch.tensor([False, True, False, False]), torch.tensor([False, False, True])]
    core_1 = [torch.tensor([True, False, False, False]), torch.tensor([False, False, False])]
    engine = cpi_engine(named)
    hooks = StageHooks(two_stage_plan(), engine, cpi_cores=[core_0, core_1])
    hooks.on_step_begin(None, at_step(1), None)
    assert engine.n_isolated == 0  # still stage 0
    hooks.on_step_begin(None, at_step(2), None)
    assert isolated(engine) == {"A": [1], "B": [2]}
    opt = IsolatingOptimizer(torch.optim.SGD([p for _, p in named], lr=1.0), engine)
    set_grads(named, [1.0] * 4, [1.0] * 3)
    opt.step()
    assert named[0][1].tolist() == [0.0, 1.0, 0.0, 0.0]
    assert named[1][1].tolist() == [0.0, 0.0, 1.0]


def test_sequential_cpi_freezes_the_top_p_of_the_stage_update():
    """Sequential CPI-FT-lite, p = 0.3 of 7 entries -> 2: stage 0 moved A by [0, 5, 0, 0] and
    B by [0, 0, 4]; the top-2 |update| entries A1, B2 are frozen from stage 1 on."""
    named = tensors()
    engine = cpi_engine(named)
    hooks = StageHooks(two_stage_plan(), engine, cpi_update_ratio=0.3)
    hooks.on_train_begin(None, at_step(0), None)
    with torch.no_grad():
        named[0][1].add_(torch.tensor([0.0, 5.0, 0.0, 0.0]))
        named[1][1].add_(torch.tensor([0.0, 0.0, 4.0]))
    hooks.on_step_begin(None, at_step(2), None)
    assert isolated(engine) == {"A": [1], "B": [2]}
    assert engine.config.protect_mode == "final_delta"  # frozen, not only observed
