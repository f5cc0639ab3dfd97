"""EPI's core formulas pinned by hand-computed values: each test fails on a named mutation.

- the importance EMA is fed the raw gradient, before clipping (not after);
- per-tensor normalisation is `mean` (S = F / (mean F + eps)), not `max`;
- CPI's cores of finished stages are frozen (mixed probes and sequential update cores);
- a mask refresh, global and per_layer, on a hand-computed example: which entries are isolated,
  which released, and what happens to their values and gradients under `final_delta`.

Two eligible tensors A (4 entries) and B (3 entries) stand in for a model's block weights.
"""

from __future__ import annotations

import math
import random
import zlib
from types import SimpleNamespace

import pytest
import torch
from transformers import TrainerState

from components.epi_finetune import cpi
from components.epi_finetune.engine import ParameterIsolation, _salt, reset_moments
from components.epi_finetune.methods import isolation_config
from components.epi_finetune.monitors import StageHooks
from components.epi_finetune.optimizer import IsolatingOptimizer, build_isolating_optimizer
from components.epi_finetune.params import FinetuneParams, IsolationConfig
from components.epi_finetune.schedule import TrainingPlan
from components.epi_finetune.selection import (
    _sampled_threshold,
    eligible_parameters,
    mix_seeds,
    normalise_scores,
    seeded_generator,
    top_fraction,
)
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


# ---- per-tensor normalisation: every mode, by hand (eps = 1 so that + eps is visible) ----------


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        # F = [1, 2, 3, 6]: mean 3 -> F / (3 + 1)
        ("mean", [0.25, 0.5, 0.75, 1.5]),
        # max 6 -> F / (6 + 1)
        ("max", [1 / 7, 2 / 7, 3 / 7, 6 / 7]),
        # (F - 1) / (6 - 1 + 1)
        ("minmax", [0.0, 1 / 6, 2 / 6, 5 / 6]),
        # F - 3 = [-2, -1, 0, 3]; population variance (4 + 1 + 0 + 9) / 4 = 3.5 (sample: 14/3)
        ("zscore", [d / (3.5**0.5 + 1) for d in (-2.0, -1.0, 0.0, 3.0)]),
        ("none", [1.0, 2.0, 3.0, 6.0]),
    ],
)
def test_every_normalisation_mode_by_hand(mode, expected):
    scores = normalise_scores(torch.tensor([1.0, 2.0, 3.0, 6.0]), mode, 1.0)
    assert scores.tolist() == pytest.approx(expected)


def test_rank_normalisation_keeps_the_shape_and_divides_by_n_minus_one():
    """[[3, 1], [6, 2]]: ranks [[2, 0], [3, 1]] / (4 - 1); two entries [5, 4]: ranks [1, 0] / 1
    (a divisor of at least 2 would halve them)."""
    ranks = normalise_scores(torch.tensor([[3.0, 1.0], [6.0, 2.0]]), "rank", 1.0)
    assert ranks.shape == (2, 2)
    assert ranks.flatten().tolist() == pytest.approx([2 / 3, 0.0, 1.0, 1 / 3])
    assert normalise_scores(torch.tensor([5.0, 4.0]), "rank", 1.0).tolist() == [1.0, 0.0]


def test_an_unknown_normalisation_is_an_error():
    with pytest.raises(ValueError, match="unknown norm"):
        normalise_scores(torch.ones(2), "median", 1.0)


# ---- seeds: the same numbers in every process -------------------------------------------------


def test_mixed_seeds_by_hand():
    """(0 * 1_000_003 + 2) * 1_000_003 + 3 = 2_000_009; modulo 2**63: 2**62 * 1_000_003 is 2**62
    modulo 2**63 (1_000_003 is odd), so mixing (2**62, 5) gives 2**62 + 5."""
    assert mix_seeds(2, 3) == 2_000_009
    assert mix_seeds(2**62, 5) == 2**62 + 5


def test_a_generator_seed_is_taken_modulo_2_to_the_63():
    assert seeded_generator(torch.device("cpu"), 2**63 + 7).initial_seed() == 7


# ---- top_fraction: exact and sampled paths --------------------------------------------------


def limits(exact_max: int, sample_size: int = 10) -> IsolationConfig:
    return IsolationConfig(exact_quantile_max_elements=exact_max, quantile_sample_size=sample_size)


def test_nothing_to_isolate_gives_an_empty_long_index_and_an_infinite_threshold():
    only = [torch.ones(3)]  # one tensor: its device is the empty index's
    picked, tau = top_fraction(lambda i: only[i], [3], 0.1, limits(10))  # round(0.3) = 0
    assert picked.dtype == torch.long and picked.numel() == 0 and tau == math.inf


def test_the_exact_path_runs_up_to_its_limit_and_scores_each_tensor_once():
    """4 equal scores, ratio 0.5, limit 4 (= N): the exact topk keeps exactly k = 2 of them (the
    sampled path would keep all 4 ties: 4 is not more than 2k)."""
    calls = []

    def score(i):
        calls.append(i)
        return torch.full((2,), 2.0)

    picked, tau = top_fraction(score, [2, 2], 0.5, limits(4))
    assert picked.numel() == 2 and tau == 2.0
    assert calls == [0, 1]


@pytest.mark.parametrize(
    ("ratio", "expected"),
    [
        # every score ties at tau = 1 (whatever the subsample): all 10 are >= tau.
        (0.5, list(range(10))),  # k = 5: 10 entries are not more than 2k: all kept
        (0.4, []),  # k = 4: 10 > 2k = 8: the ties at tau are dropped (3k = 12 would keep them)
        (0.3, []),  # k = 3: 10 > 6: dropped
    ],
)
def test_the_sampled_path_keeps_ties_at_tau_only_when_they_do_not_double_the_set(ratio, expected):
    tensors = [torch.ones(6), torch.ones(4)]
    picked, tau = top_fraction(lambda i: tensors[i], [6, 4], ratio, limits(9))
    assert tau == 1.0
    assert picked.tolist() == expected


def sampled_tau(ratio: float, seed: int = 0) -> float:
    """Sizes [9, 1], sample size 10: 9 draws from A (all 0) and 1 from B ([5]): the subsample is
    [0] * 9 + [5] whatever the draws."""
    tensors = [torch.zeros(9), torch.tensor([5.0])]
    return _sampled_threshold(lambda i: tensors[i], [9, 1], ratio, 10, seed)


def test_sampled_threshold_is_the_quantile_of_the_subsample_by_hand():
    """ratio 0.1: k = max(1, round(1)) = 1 -> the 10th smallest of 10 = 5; ratio 0.2: k = 2 ->
    the 9th = 0 (a tensor drawn at least twice would add a second 5 and move it to 5); ratio
    0.01: k = max(1, 0) = 1 -> 5."""
    assert sampled_tau(0.1) == 5.0
    assert sampled_tau(0.2) == 0.0
    assert sampled_tau(0.01) == 5.0


def test_sampled_threshold_depends_on_the_seed_alone():
    scores = torch.arange(1000.0)
    tau = [_sampled_threshold(lambda i: scores, [1000], 0.5, 10, seed) for seed in (3, 3, 4)]
    assert tau[0] == tau[1] != tau[2]


# ---- CPI: cores, overlap groups ---------------------------------------------------------------


def test_jaccard_of_two_empty_cores_is_zero():
    empty = [torch.zeros(2, dtype=torch.bool)]
    assert cpi.jaccard(empty, empty) == 0.0


def test_cores_of_different_tensor_counts_are_an_error():
    one, two = [torch.ones(2, dtype=torch.bool)], [torch.ones(2, dtype=torch.bool)] * 2
    with pytest.raises(ValueError):
        cpi.jaccard(one, two)
    with pytest.raises(ValueError):
        cpi.union([two], one)
    with pytest.raises(ValueError):
        cpi.update_core([torch.zeros(2)], [torch.zeros(2)] * 2, 0.5, IsolationConfig())


def test_update_core_is_the_top_of_the_absolute_update():
    """before [3, 0, 0] -> now [-3, 1, 0]: |update| = [6, 1, 0], top 1 of 3 = entry 0
    (|now + before| = [0, 1, 0] would pick entry 1)."""
    core = cpi.update_core(
        [torch.tensor([3.0, 0.0, 0.0])], [torch.tensor([-3.0, 1.0, 0.0])], 0.34, IsolationConfig()
    )
    assert core[0].tolist() == [True, False, False]


def test_tasks_overlapping_exactly_at_tau_share_a_group_in_a_seeded_order():
    """a = {0, 1}, b = {0}: J = 1/2 = tau -> one group; c, d, e, f are disjoint singletons. The
    groups are shuffled by random.Random(seed) from their sorted order."""
    mask = lambda *on: [torch.tensor([i in on for i in range(8)])]  # noqa: E731
    cores = {"a": mask(0, 1), "b": mask(0), "c": mask(2), "d": mask(3), "e": mask(4), "f": mask(5)}
    expected = [("a", "b"), ("c",), ("d",), ("e",), ("f",)]
    random.Random(7).shuffle(expected)
    assert cpi.group_tasks(cores, 0.5, seed=7) == expected


class LinearProbe(torch.nn.Module):
    """loss = (w . x - 1)^2: only the entries of w where x is nonzero get a gradient."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(4))

    def forward(self, x, labels=None):
        return {"loss": ((x @ self.w - 1.0) ** 2).mean()}


@pytest.mark.filterwarnings("ignore:.pin_memory. argument is set as true")  # CPU: no pinning
def test_probe_cores_are_each_tasks_own_update_from_theta_zero():
    """One probe step per task (AdamW, lr 0.1, constant): task a's inputs touch w0 only, task
    b's w2 only, so the top 1/4 of |update| is w0 for a and w2 for b; the model is back at
    theta_0 = 0 after each probe (b's core would otherwise be measured from a's end point)."""
    model = LinearProbe()
    datasets = {
        "a": [{"x": torch.tensor([1.0, 0.0, 0.0, 0.0])}] * 2,
        "b": [{"x": torch.tensor([0.0, 0.0, 1.0, 0.0])}] * 2,
    }
    collate = lambda rows: {"x": torch.stack([r["x"] for r in rows])}  # noqa: E731
    cores = cpi.probe_cores(
        model, [model.w], datasets, collate, probe_steps=1, ratio=0.25, limits=IsolationConfig(),
        learning_rate=0.1, batch_size=2, seed=0,
    )  # fmt: skip
    assert cores["a"][0].tolist() == [True, False, False, False]
    assert cores["b"][0].tolist() == [False, False, True, False]
    assert model.w.tolist() == [0.0, 0.0, 0.0, 0.0]


# ---- the refresh schedule ---------------------------------------------------------------------


def test_refresh_steps_are_t0_then_every_k_steps():
    """T0 = 2, K = 3: steps 2, 5, 8 ((t - T0) % K == 0 from T0 on); static (K = 0): T0 only."""
    engine = ParameterIsolation(tensors(), IsolationConfig(mask_interval=3, warmup_steps=2))
    assert [t for t in range(10) if engine.due(t)] == [2, 5, 8]
    static = ParameterIsolation(tensors(), IsolationConfig(mask_interval=0, warmup_steps=2))
    assert [t for t in range(10) if static.due(t)] == [2]


def test_due_and_maybe_refresh_read_the_given_step_else_the_steps_accumulated():
    engine = ParameterIsolation(tensors(), IsolationConfig(mask_interval=3, warmup_steps=2))
    assert engine.due() is False  # no step accumulated yet: t = 0
    assert engine.maybe_refresh(step=2) is not None  # the given step, not the 0 accumulated
    assert engine.maybe_refresh(step=3) is None


# ---- drift statistics of a refresh, by hand ----------------------------------------------------
#
# The refresh example above with p = 0.15: k = round(0.15 * 7) = 1.
#   step 1 (STEP_1): top-1 S is A0 = 6.25 / 2.625 = 2.381 (tau)              -> M1 = {A0}
#   step 2 (STEP_1 again): F = 0.4375 g^2, the same S                           -> M2 = {A0}, age 2
#   step 3 (STEP_2): F_A = [8.203, 5.25, 0.328, 9] (mean 5.695) S_A3 = 1.580;
#                    F_B = [5.25, 2.953, 2.953] (mean 3.719)   S_B0 = 1.412     -> M3 = {A3}


def test_drift_statistics_of_three_refreshes_by_hand():
    named = tensors()
    config = IsolationConfig(iso_ratio=0.15, mask_interval=1, warmup_steps=1, ema_beta=0.75)
    opt = isolating_sgd(named, config, lr=0.1)
    for grads in (STEP_1, STEP_1, STEP_2):
        set_grads(named, *grads)
        opt.step()
    first, kept, moved = opt.engine.history
    no_ages = {"1-1": 0, "2-3": 0, "4-7": 0, "8-15": 0, "16-255": 0}
    assert first == {
        "step": 1, "refresh": 1, "source": "importance", "tau": pytest.approx(6.25 / 2.625),
        "n_eligible": 7, "n_isolated": 1, "frac_isolated": pytest.approx(1 / 7),
        "jaccard_prev": None, "churn": None, "overlap_first": 1.0,
        "jaccard_random": pytest.approx(0.15 / 1.85), "overlap_random": 0.15,
        "released": 0, "added": 1, "age_mean": 1.0, "age_max": 1,
        "age_hist": no_ages | {"1-1": 1}, "per_tensor_frac": {"A": 0.25, "B": 0.0},
    }  # fmt: skip
    assert (kept["jaccard_prev"], kept["churn"], kept["overlap_first"]) == (1.0, 0.0, 1.0)
    assert (kept["age_mean"], kept["age_max"], kept["age_hist"]) == (2.0, 2, no_ages | {"2-3": 1})
    assert (moved["jaccard_prev"], moved["churn"], moved["overlap_first"]) == (0.0, 1.0, 0.0)
    assert (moved["released"], moved["added"], moved["age_max"]) == (1, 1, 1)
    assert isolated(opt.engine) == {"A": [3], "B": []}


def test_an_empty_first_mask_is_not_the_reference_of_overlap_first():
    """An external empty mask first (age_max 0, no overlap reference), then a refresh picks A0:
    the first non-empty mask is the reference, so its overlap with itself is 1."""
    named = tensors()
    config = IsolationConfig(iso_ratio=0.15, mask_interval=1, warmup_steps=1)
    opt = isolating_sgd(named, config, lr=0.1)
    empty = opt.engine.set_mask(
        [torch.zeros(4, dtype=torch.bool), torch.zeros(3, dtype=torch.bool)]
    )
    assert (empty["age_max"], empty["age_mean"], empty["overlap_first"]) == (0, 0.0, None)
    set_grads(named, *STEP_1)
    opt.step()
    assert opt.engine.history[-1]["overlap_first"] == 1.0


def test_per_layer_churn_is_one_minus_the_jaccard():
    """The per_layer example's step 2: Jaccard 1/3 -> churn 2/3."""
    named, opt = refresh_run("per_layer")
    for grads in (STEP_1, STEP_2):
        set_grads(named, *grads)
        opt.step()
    assert opt.engine.history[-1]["churn"] == pytest.approx(2 / 3)


# ---- optimizer moments reset on release --------------------------------------------------------


def test_reset_moments_zeroes_exactly_the_given_entries():
    """Adam-like state (m, v of the tensor's shape and a scalar step) on three tensors; a dense
    mask on the first, an empty index set then a one-entry index set; a fourth tensor has no
    state. Only the named entries become 0; the scalar step is left alone."""
    params = [torch.nn.Parameter(torch.zeros(3)) for _ in range(4)]
    opt = torch.optim.Adam(params)
    for p in params[:3]:
        opt.state[p] = {"exp_avg": torch.full((3,), 5.0), "exp_avg_sq": torch.full((3,), 7.0),
                        "step": torch.tensor(4.0)}  # fmt: skip
    masks = [
        torch.tensor([True, False, True]),
        torch.zeros(0, dtype=torch.int32),
        torch.tensor([1], dtype=torch.int32),
        torch.tensor([0], dtype=torch.int32),
    ]
    reset_moments(opt, params, masks)
    state = [opt.state[p] for p in params[:3]]
    assert [s["exp_avg"].tolist() for s in state] == [[0, 5, 0], [5, 5, 5], [5, 0, 5]]
    assert [s["exp_avg_sq"].tolist() for s in state] == [[0, 7, 0], [7, 7, 7], [7, 0, 7]]
    assert all(s["step"].item() == 4.0 for s in state)


# ---- the optimizer wrapper ----------------------------------------------------------------


def test_adamw_groups_decay_only_matrices_and_take_the_training_arguments():
    """A Linear(2, 2): the weight (2-D) decays, the bias (1-D) never; TrainingArguments' fields
    override the keyword defaults, and max_grad_norm 0 means no clipping (None)."""
    model = torch.nn.Linear(2, 2)
    args = SimpleNamespace(
        learning_rate=0.01, weight_decay=0.1, adam_beta1=0.8, adam_beta2=0.9, adam_epsilon=1e-6,
        max_grad_norm=2.0,
    )  # fmt: skip
    every_tensor = IsolationConfig(eligible="all")
    opt = build_isolating_optimizer(model, every_tensor, args)
    weight, bias = opt.optimizer.param_groups
    assert weight["params"] == [model.weight] and bias["params"] == [model.bias]
    assert (weight["weight_decay"], bias["weight_decay"]) == (0.1, 0.0)
    assert (weight["lr"], weight["betas"], weight["eps"]) == (0.01, (0.8, 0.9), 1e-6)
    assert opt.max_grad_norm == 2.0
    args.max_grad_norm = 0.0
    assert build_isolating_optimizer(model, every_tensor, args).max_grad_norm is None
    default = build_isolating_optimizer(model, every_tensor).optimizer.param_groups[0]
    assert (default["lr"], default["weight_decay"], default["eps"]) == (1e-3, 0.0, 1e-8)


def test_step_returns_the_closures_loss_and_keeps_the_last_refresh():
    """No refresh before T0 = 2: last_refresh stays None, then holds the refresh's stats through
    the steps that do not refresh (K = 10); zero_grad drops the gradients (set to None)."""
    named = tensors()
    opt = isolating_sgd(named, IsolationConfig(mask_interval=10, warmup_steps=2), lr=0.1)
    assert (opt.last_grad_norm, opt.last_refresh) == (None, None)
    set_grads(named, *STEP_1)
    assert opt.step() is None
    assert opt.last_refresh is None
    assert opt.step(closure=lambda: 3.5) == 3.5
    assert opt.last_refresh is opt.engine.history[-1]
    opt.step()
    assert opt.last_refresh is opt.engine.history[0]
    opt.zero_grad()
    assert named[0][1].grad is None


# ---- checkpoints of version 1 (dense masks) ----------------------------------------------------


def version_1_state(first_mask) -> dict:
    """A dense state without a version (the first format had none): EMA A [1, 2, 3, 4], B [5, 6,
    7] with nothing pending, the mask and sets of the test below."""
    bools = lambda *v: torch.tensor(v, dtype=torch.bool)  # noqa: E731
    return {
        "names": ["A", "B"], "step": 7, "n_refresh": 2, "task": None,
        "ema": {None: [torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([5.0, 6.0, 7.0])]},
        "mask": [bools(0, 1, 0, 1), bools(1, 0, 0)],
        "age": [torch.tensor([0, 3, 0, 300], dtype=torch.int16), torch.zeros(3, dtype=torch.int16)],
        "first_mask": first_mask,
        "task_masks": {"t": [bools(0, 0, 1, 0), bools(0, 1, 0)]},
        "memory_mask": [bools(1, 0, 0, 0), bools(0, 0, 1)],
        "history": [],
    }  # fmt: skip


def test_a_version_1_state_converts_masks_ages_and_sets_by_hand():
    """A (4 entries) and B (3) in one global index space: A0..A3 = 0..3, B0..B2 = 4..6.

    mask A [F, T, F, T], B [T, F, F] -> isolated A1, A3, B0; int16 ages A [0, 3, 0, 300],
    B [0, 0, 0] clamped into uint8's [1, 255] on the isolated entries: 3, 255, 1. Task set
    {A2, B1} -> global {2, 5}; memory {A0, B2} -> {0, 6}; first mask {A1}. The EMA is read back
    as stored (nothing pending), and accumulating goes on from it."""
    engine = ParameterIsolation(tensors(), IsolationConfig(ema_beta=0.5))
    first = [torch.tensor([False, True, False, False]), torch.tensor([False] * 3)]
    engine.load_state_dict(version_1_state(first))
    assert isolated(engine) == {"A": [1, 3], "B": [0]}
    assert [a.tolist() for a in engine.age] == [[0, 3, 0, 255], [1, 0, 0]]
    assert [m.tolist() for m in engine.first_mask] == [[False, True, False, False]] + [[False] * 3]
    assert [m.nonzero().flatten().tolist() for m in engine.task_masks["t"]] == [[2], [1]]
    assert [m.nonzero().flatten().tolist() for m in engine.memory_mask] == [[0], [2]]
    assert [t.tolist() for t in engine.ema[None]] == [[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0]]
    engine.accumulate()  # no gradients: the EMA only decays, F = 0.5 F
    assert engine.ema[None][1].tolist() == [2.5, 3.0, 3.5]


def test_a_loaded_state_without_a_first_mask_takes_the_next_refresh_as_first():
    engine = ParameterIsolation(tensors(), IsolationConfig())
    engine.load_state_dict(version_1_state(None))
    assert engine.first_mask is None
    assert engine.refresh()["overlap_first"] == 1.0


def test_a_loaded_state_is_a_copy():
    """Changing the saved tensors afterwards (the caller's checkpoint) leaves the engine alone;
    a fresh engine saves no first mask."""
    source = ParameterIsolation(tensors(), IsolationConfig())
    assert source.state_dict()["first_indices"] is None
    source.load_state_dict(version_1_state(None))
    state = source.state_dict()
    engine = ParameterIsolation(tensors(), IsolationConfig())
    engine.load_state_dict(state)
    state["ema"][None][0].fill_(9.0)
    state["age"].fill_(9)
    state["task_sets"]["t"].fill_(0)
    state["memory_set"].fill_(0)
    assert engine.ema[None][0].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert [a.tolist() for a in engine.age] == [[0, 3, 0, 255], [1, 0, 0]]
    assert [m.nonzero().flatten().tolist() for m in engine.task_masks["t"]] == [[2], [1]]
    assert [m.nonzero().flatten().tolist() for m in engine.memory_mask] == [[0], [2]]


def test_step_transient_bytes_by_protect_mode():
    """Two isolated float32 entries: int64 index (8 B) each, plus the saved value (4 B) unless
    grad_zero (the gradient is zeroed, nothing saved): 24, 16; none protects nothing: 0."""
    expected = {"final_delta": 2 * (8 + 4), "grad_zero": 2 * 8, "none": 0}
    for mode, size in expected.items():
        engine = ParameterIsolation(tensors(), IsolationConfig(protect_mode=mode))
        engine.set_mask(
            [torch.tensor([True, True, False, False]), torch.zeros(3, dtype=torch.bool)]
        )
        assert engine.step_transient_bytes() == size


def test_task_bookkeeping_without_per_task_ema():
    """set_task only records the task; the per-task selection salt is the crc32 of its repr."""
    engine = ParameterIsolation(tensors(), IsolationConfig())
    engine.set_task("qa")
    assert engine.task == "qa"
    assert _salt("qa") == zlib.crc32(b"'qa'")


def test_each_tensor_draws_its_own_subsample():
    """A = [0, 1], B = [1, 0], one draw from each, k = 1: tau is the larger draw. Drawn with one
    index for both tensors, it would always be 1 (one 0 and one 1); independent draws pick 0 twice
    for about one seed in four."""
    tensors_ = [torch.tensor([0.0, 1.0]), torch.tensor([1.0, 0.0])]
    taus = {_sampled_threshold(lambda i: tensors_[i], [2, 2], 0.5, 2, seed) for seed in range(20)}
    assert taus == {0.0, 1.0}


def test_stage_memory_counts_in_memory_bytes():
    """The refresh example's step 1 under stage_memory: M1 = {A0, A1}; end_stage() remembers the
    same two entries as int64 global indices: 16 more bytes, the mask itself unchanged."""
    named = tensors()
    config = IsolationConfig(
        iso_ratio=0.3, mask_interval=1, warmup_steps=1, ema_beta=0.75, stage_memory=True
    )
    opt = isolating_sgd(named, config, lr=0.1)
    set_grads(named, *STEP_1)
    opt.step()
    before = opt.engine.memory_bytes()
    assert opt.engine.end_stage() == 2
    assert isolated(opt.engine) == {"A": [0, 1], "B": []}
    assert opt.engine.memory_bytes() - before == 2 * 8


def test_moments_of_a_different_number_of_tensors_are_an_error():
    params = [torch.nn.Parameter(torch.zeros(2))]
    with pytest.raises(ValueError):
        reset_moments(torch.optim.Adam(params), params, [torch.tensor([0])] * 2)


def test_random_masks_are_redrawn_at_every_refresh_and_per_tensor():
    """mask_source=random, per_layer, p = 0.5 of two 4-entry tensors: each refresh draws anew
    (seeded by the refresh count) and each tensor from its own stream: over six refreshes the
    masks change, and A's differs from B's at least once (same shapes, so one stream for both
    would give equal masks)."""
    named = [("A", torch.nn.Parameter(torch.ones(4))), ("B", torch.nn.Parameter(torch.ones(4)))]
    config = IsolationConfig(mask_source="random", selection="per_layer", iso_ratio=0.5)
    engine = ParameterIsolation(named, config)
    masks = []
    for _ in range(6):
        engine.refresh()
        masks.append((tuple(engine.indices[0].tolist()), tuple(engine.indices[1].tolist())))
    assert len(set(masks)) > 1
    assert any(a != b for a, b in masks)


def test_a_lora_model_isolates_only_its_adapter_matrices():
    """A block weight frozen under LoRA adapters: the eligible tensors are lora_A and lora_B
    (2-D), not the block's weight or bias; without adapters, the block's 2-D weight."""
    model = torch.nn.Module()
    model.layers = torch.nn.ModuleList([torch.nn.Module()])
    proj = model.layers[0].q = torch.nn.Linear(2, 2)
    assert [n for n, _ in eligible_parameters(model)] == ["layers.0.q.weight"]
    proj.lora_A = torch.nn.Linear(2, 1, bias=False)
    proj.lora_B = torch.nn.Linear(1, 2, bias=False)
    assert [n for n, _ in eligible_parameters(model)] == [
        "layers.0.q.lora_A.weight", "layers.0.q.lora_B.weight",
    ]  # fmt: skip


def sampled_engine(**config) -> ParameterIsolation:
    """Two 1000-entry tensors; every selection takes the sampled-threshold path (4 scores)."""
    named = [(n, torch.nn.Parameter(torch.ones(1000))) for n in ("A", "B")]
    limits = {"exact_quantile_max_elements": 1, "quantile_sample_size": 4}
    return ParameterIsolation(named, IsolationConfig(**limits, **config))


def test_every_selection_draws_its_own_seed_from_the_salt_and_the_tensor():
    # the same scores 0..999 in both tensors; a threshold from 4 sampled scores depends on which
    # 4 are drawn, so the selected sets tell the seeds apart
    ema = [torch.arange(1000.0), torch.arange(1000.0)]
    picked = sampled_engine()._select
    # global: the salt (per-task streams, stage memory) changes the draw; the same salt repeats it
    assert not torch.equal(picked(ema, 0.25, 0)[0], picked(ema, 0.25, 1)[0])
    assert torch.equal(picked(ema, 0.25, 0)[0], picked(ema, 0.25, 0)[0])
    # per_layer: each tensor draws its own sample (same scores, different sets) and the salt
    # changes both
    per_layer = sampled_engine(selection="per_layer")._select
    first = per_layer(ema, 0.25, 0)[0]
    a, b = first[first < 1000], first[first >= 1000] - 1000
    assert not torch.equal(a, b)
    assert not torch.equal(first, per_layer(ema, 0.25, 1)[0])
    # random masks: the salt changes them too
    random = sampled_engine(mask_source="random")._select
    assert not torch.equal(random(ema, 0.25, 0)[0], random(ema, 0.25, 1)[0])


# ---- ages under a mask change between refreshes, and their saturation ---------------------------


def test_a_stage_memory_keeps_the_ages_and_a_refresh_saturates_them_at_255():
    """The version-1 state above (mask {A1, A3, B0}, ages 3, 255, 1; memory {A0, B2}) under
    stage_memory with p = 0.1 of 7 entries (k = 1). Scores (mean norm): A [0.4, 0.8, 1.2, 1.6],
    B [5, 6, 7] / 6: the top-1 is A3. end_stage remembers {A3} with {A0, B2}; the mask becomes
    {A0, A1, A3, B0, B2}, the kept entries keep their ages (no refresh: 3, 255, 1), the added
    ones start at 1. The next refresh isolates {A3} + memory = {A0, A3, B2}: each kept entry
    ages by one, A3 stays at 255 (saturating), A1 and B0 are released."""
    engine = ParameterIsolation(tensors(), IsolationConfig(iso_ratio=0.1, stage_memory=True))
    engine.load_state_dict(version_1_state(None))
    assert engine.end_stage() == 3
    assert [a.tolist() for a in engine.age] == [[1, 3, 0, 255], [1, 0, 1]]
    stats = engine.refresh()
    assert [a.tolist() for a in engine.age] == [[2, 0, 0, 255], [0, 0, 2]]
    assert (stats["age_max"], stats["released"]) == (255, 2)


# ---- [D] estimator options: the bf16 EMA and the steps since a skipped update ------------------


def test_a_bf16_ema_is_created_and_loaded_in_bf16():
    """beta 0.5, g_A0 = 1 + 2**-5: g*g = 1 + 2**-4 + 2**-10, which bf16 (8 significant bits)
    rounds to 1.0625; one step gives F = 0.5 * 1.0625 = 0.53125 (fp32: 0.53125 + 2**-11). The
    EMA of 7 entries costs 14 bytes in bf16, 28 in fp32. A checkpoint's EMA is converted to the
    loading engine's dtype: fp32 -> bf16 rounds it, bf16 -> fp32 keeps the value."""

    def fed(ema_dtype: str) -> ParameterIsolation:
        named = tensors()
        config = IsolationConfig(ema_beta=0.5, ema_dtype=ema_dtype, warmup_steps=100)
        engine = ParameterIsolation(named, config)
        set_grads(named, [1 + 2**-5, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0])
        engine.accumulate()
        return engine

    fresh = ParameterIsolation(tensors(), IsolationConfig(ema_dtype="bfloat16"))
    assert [t.dtype for t in fresh.ema[None]] == [torch.bfloat16] * 2
    assert fresh.memory_bytes() == 7 * 2  # no mask yet: the EMA only
    bf16, fp32 = fed("bfloat16"), fed("float32")
    assert bf16.ema[None][0].tolist() == [0.53125, 0.0, 0.0, 0.0]
    assert fp32.ema[None][0].tolist() == [0.53125 + 2**-11, 0.0, 0.0, 0.0]
    to_bf16 = ParameterIsolation(tensors(), IsolationConfig(ema_beta=0.5, ema_dtype="bfloat16"))
    to_bf16.load_state_dict(fed("float32").state_dict())  # saved with one step pending
    assert [t.dtype for t in to_bf16.ema[None]] == [torch.bfloat16] * 2
    assert to_bf16.ema[None][0].tolist() == [0.53125, 0.0, 0.0, 0.0]
    assert to_bf16.memory_bytes() == 7 * 2
    to_fp32 = ParameterIsolation(tensors(), IsolationConfig(ema_beta=0.5))
    to_fp32.load_state_dict(bf16.state_dict())
    assert [t.dtype for t in to_fp32.ema[None]] == [torch.float32] * 2
    assert to_fp32.memory_bytes() == 7 * 4


def test_a_per_task_checkpoint_keeps_each_streams_pending_decay_and_skipped_steps():
    """per_task_ema, ema_every s = 2, beta 0.5, one 2-entry tensor, task "a" throughout.
    Step 1 is skipped (its gradient never counts); step 2 updates with the gap of 2 steps:
    F = 0.25 * 0 + 0.75 * [4, 0] = [3, 0]; step 3 is skipped. Saved there (task "a"'s stream
    has a decay of beta**2 pending and one skipped step) and loaded: F is still [3, 0], and
    step 4 updates with a gap of 2: F = 0.25 * [3, 0] + 0.75 * [0, 4] = [0.75, 3]."""
    config = IsolationConfig(per_task_ema=True, ema_every=2, ema_beta=0.5, warmup_steps=100)
    w = torch.nn.Parameter(torch.zeros(2))
    engine = ParameterIsolation([("w", w)], config)
    engine.set_task("a")
    for grad in ([8.0, 8.0], [2.0, 0.0], [8.0, 8.0]):
        w.grad = torch.tensor(grad)
        engine.accumulate()
    w2 = torch.nn.Parameter(torch.zeros(2))
    resumed = ParameterIsolation([("w", w2)], config)
    resumed.load_state_dict(engine.state_dict())
    assert resumed.task == "a"
    assert resumed.ema["a"][0].tolist() == [3.0, 0.0]
    w2.grad = torch.tensor([0.0, 2.0])
    resumed.accumulate()
    assert resumed.ema["a"][0].tolist() == [0.75, 3.0]
