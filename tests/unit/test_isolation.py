"""EPI engine: protection is exact, masks have the right size and move, state survives resume."""

from __future__ import annotations

import io
import math

import pytest
import torch
import torch.distributed as dist
from pydantic import ValidationError
from transformers import LlamaConfig, LlamaForCausalLM, Trainer, TrainerCallback, TrainingArguments

from components.epi_finetune.engine import ParameterIsolation
from components.epi_finetune.index_sets import global_to_masks
from components.epi_finetune.optimizer import IsolatingOptimizer, build_isolating_optimizer
from components.epi_finetune.params import IsolationConfig
from components.epi_finetune.selection import normalise_scores, top_fraction
from components.epi_finetune.trainer_hooks import EPI_STATE_NAME, attach_isolation

VOCAB = 64


def tiny_llama(seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=32,
    )
    return LlamaForCausalLM(config)


def batch(step: int) -> dict[str, torch.Tensor]:
    ids = torch.randint(VOCAB, (4, 16), generator=torch.Generator().manual_seed(1000 + step))
    return {"input_ids": ids, "labels": ids}


def make(
    config: IsolationConfig, seed: int = 0, **opt_kwargs
) -> tuple[LlamaForCausalLM, IsolatingOptimizer]:
    model = tiny_llama(seed)
    kwargs = {"lr": 1e-2, "weight_decay": 0.1} | opt_kwargs
    return model, build_isolating_optimizer(model, config, **kwargs)


def train_step(model: torch.nn.Module, opt: torch.optim.Optimizer, step: int) -> None:
    model(**batch(step)).loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


def snapshot(engine: ParameterIsolation) -> list[torch.Tensor]:
    return [p.detach().clone() for p in engine.params]


def global_scores(engine: ParameterIsolation) -> tuple[torch.Tensor, torch.Tensor]:
    cfg = engine.config
    scores = torch.cat([normalise_scores(f, cfg.norm, cfg.eps).flatten() for f in engine.ema[None]])
    return scores, torch.cat([m.flatten() for m in engine.mask])


def n_isolated(masks: list[torch.Tensor]) -> int:
    return sum(int(m.sum()) for m in masks)


def test_config_forbids_unknown_keys_and_fills_warmup():
    with pytest.raises(ValidationError):
        IsolationConfig(iso_ratio=0.05, mask_intervall=3)
    assert IsolationConfig(mask_interval=7).warmup == 7
    assert IsolationConfig(mask_interval=None).warmup == 25
    assert IsolationConfig(mask_interval=0, warmup_steps=0).warmup == 1
    with pytest.raises(ValidationError):
        IsolationConfig(per_task_ema=True, stage_memory=True)


def test_eligible_are_block_matrices():
    engine = ParameterIsolation(tiny_llama(), IsolationConfig())
    assert len(engine.names) == 2 * 7  # q, k, v, o, gate, up, down per layer
    assert all(".layers." in n and n.endswith("proj.weight") for n in engine.names)
    assert engine.n_eligible == 2 * (4 * 32 * 32 + 3 * 32 * 64)


def test_final_delta_bit_identical_with_weight_decay_and_moments():
    model, opt = make(IsolationConfig(iso_ratio=0.05, mask_interval=2, ema_beta=0.5))
    engine = opt.engine
    for t in range(6):
        train_step(model, opt, t)
    for t in range(6, 9):  # steps 7 (plain) and 8 (refresh) and 9
        before = snapshot(engine)
        train_step(model, opt, t)
        for p, old, m in zip(engine.params, before, engine.mask, strict=True):
            state = opt.state[p]
            assert state["exp_avg"][m].abs().sum() > 0 and state["exp_avg_sq"][m].sum() > 0
            assert torch.equal(p.detach()[m], old[m])
            assert (p.detach()[~m] != old[~m]).float().mean() > 0.99
    assert n_isolated(engine.mask) == round(0.05 * engine.n_eligible)


def test_released_entries_move_again():
    model, opt = make(IsolationConfig(iso_ratio=0.05, mask_interval=2, ema_beta=0.3))
    engine = opt.engine
    checked = 0
    for t in range(12):
        before, old_mask = snapshot(engine), [m.clone() for m in engine.mask]
        train_step(model, opt, t)
        released = [a & ~b for a, b in zip(old_mask, engine.mask, strict=True)]
        if n_isolated(released) == 0:
            continue
        checked += 1
        # A release takes effect in the refresh step itself; the entries get AdamW updates again.
        for p, old, r in zip(engine.params, before, released, strict=True):
            assert (p.detach()[r] != old[r]).all()
    assert checked >= 2
    stats = engine.history[-1]
    assert stats["released"] > 0 and stats["added"] > 0
    assert stats["jaccard_random"] < stats["jaccard_prev"] < 1.0
    assert 0.0 <= stats["overlap_first"] <= 1.0
    # chance levels at p = 0.05: Jaccard 0.05 / 1.95 = 0.02564; overlap with the first mask 0.05
    assert stats["jaccard_random"] == pytest.approx(0.025641, abs=1e-6)
    assert stats["overlap_random"] == 0.05


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.95])
def test_lazily_scaled_ema_equals_the_plain_ema(beta):
    engine = ParameterIsolation(tiny_llama(), IsolationConfig(ema_beta=beta, mask_interval=None))
    gen = torch.Generator().manual_seed(0)
    reference = [torch.zeros(p.shape, dtype=torch.float64) for p in engine.params]
    for step in range(45):  # beta = 0.5 folds the scale every 20 steps
        for p, ref in zip(engine.params, reference, strict=True):
            p.grad = torch.randn(p.shape, generator=gen) * (1 + step % 7)
            ref.mul_(beta).addcmul_(p.grad.double(), p.grad.double(), value=1 - beta)
        engine.accumulate()
        if step % 11 == 0:  # reading folds the scale in; accumulation goes on from there
            for f, ref in zip(engine.ema[None], reference, strict=True):
                torch.testing.assert_close(f.double(), ref, rtol=1e-5, atol=0)
    for f, ref in zip(engine.ema[None], reference, strict=True):
        torch.testing.assert_close(f.double(), ref, rtol=1e-5, atol=0)


def top_fraction_masks(
    scores: list[torch.Tensor], ratio: float, seed: int = 0, **limits: int
) -> tuple[list[torch.Tensor], float]:
    """Dense masks of the top ``ratio`` of all scores, and the threshold tau."""
    picked, tau = top_fraction(
        lambda i: scores[i], [s.numel() for s in scores], ratio, IsolationConfig(**limits), seed
    )
    return global_to_masks(picked, scores), tau


def exact_quantile(scores: list[torch.Tensor], ratio: float) -> float:
    """The (1 - ratio) quantile of all scores together: the k-th largest value."""
    flat = torch.cat([s.flatten() for s in scores])
    k = max(1, round(ratio * flat.numel()))
    return flat.kthvalue(flat.numel() - k + 1).values.item()


def test_global_quantile_exact_and_sampled():
    gen = torch.Generator().manual_seed(0)
    scores = [torch.rand(300, 400, generator=gen), torch.rand(1000, generator=gen) * 3]
    scores.append(torch.randn(50, 50, 20, generator=gen))
    n = sum(s.numel() for s in scores)
    masks, tau = top_fraction_masks(scores, 0.05)
    assert abs(n_isolated(masks) / n - 0.05) <= 0.001
    assert tau == exact_quantile(scores, 0.05)
    assert torch.cat([s[m] for s, m in zip(scores, masks, strict=True)]).min() == tau
    masks, tau = top_fraction_masks(
        scores, 0.05, seed=3, exact_quantile_max_elements=1000, quantile_sample_size=200_000
    )
    assert abs(n_isolated(masks) / n - 0.05) <= 0.005
    assert top_fraction_masks(scores, 0.0)[1] == math.inf


def test_prefiltered_topk_is_exact():
    gen = torch.Generator().manual_seed(0)
    scores = torch.rand(700_000, generator=gen) ** 3  # large enough for the prefilter
    k = round(0.05 * scores.numel())
    idx, tau = top_fraction(lambda i: scores, [scores.numel()], 0.05, IsolationConfig())
    assert idx.numel() == k and torch.all(idx[1:] > idx[:-1])
    assert torch.equal(idx, scores.topk(k).indices.sort().values) and tau == scores[idx].min()
    ties = torch.zeros(700_000)
    ties[:1000] = 1.0  # the threshold is 0: every entry is a candidate; still exactly k
    idx, tau = top_fraction(lambda i: ties, [ties.numel()], 0.05, IsolationConfig())
    assert idx.numel() == k and tau == 0.0 and set(range(1000)) <= set(idx.tolist())


def test_sampled_selection_and_per_device_buffers_match():
    def run(flat: bool, **cfg) -> tuple[list[torch.Tensor], ParameterIsolation]:
        model, opt = make(IsolationConfig(mask_interval=2, ema_beta=0.5, **cfg))
        opt.engine._flat_ok = flat  # False: the layout used across devices
        for t in range(6):
            train_step(model, opt, t)
        return list(model.parameters()), opt.engine

    (a, ea), (b, eb) = run(True), run(False)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert all(torch.equal(x, y) for x, y in zip(ea.mask, eb.mask, strict=True))
    assert ea.history == eb.history and ea.memory_bytes() == eb.memory_bytes()
    # above exact_quantile_max_elements: the threshold comes from a seeded subsample
    _, sampled = run(True, exact_quantile_max_elements=1000, quantile_sample_size=5000)
    assert abs(sampled.n_isolated / sampled.n_eligible - 0.05) < 0.01
    assert sampled.history[-1]["tau"] is not None


def test_engine_global_selection_size_and_order():
    engine = ParameterIsolation(tiny_llama(), IsolationConfig(iso_ratio=0.05))
    gen = torch.Generator().manual_seed(1)
    for f in engine.ema[None]:
        f.copy_(torch.rand(f.shape, generator=gen) * float(torch.rand(1, generator=gen) * 10))
    engine.refresh()
    scores, mask = global_scores(engine)
    assert abs(mask.float().mean().item() - 0.05) <= 0.001
    assert scores[mask].min() >= scores[~mask].max()


def test_static_mask_never_changes_after_warmup():
    model, opt = make(IsolationConfig(mask_interval=None, warmup_steps=3, ema_beta=0.5))
    engine = opt.engine
    for t in range(3):
        train_step(model, opt, t)
    first = [m.clone() for m in engine.mask]
    assert n_isolated(first) == round(0.05 * engine.n_eligible)
    for t in range(3, 12):
        train_step(model, opt, t)
        assert all(torch.equal(a, b) for a, b in zip(first, engine.mask, strict=True))
    assert len(engine.history) == 1 and int(engine.age[0].max()) == 1


def test_random_and_inverse_sources():
    def run(source: str, seed: int = 0) -> ParameterIsolation:
        model, opt = make(IsolationConfig(mask_interval=2, mask_source=source, seed=seed))
        for t in range(4):
            train_step(model, opt, t)
        return opt.engine

    rand_a, rand_b, rand_c = run("random"), run("random"), run("random", seed=1)
    assert all(torch.equal(a, b) for a, b in zip(rand_a.mask, rand_b.mask, strict=True))
    assert not all(torch.equal(a, c) for a, c in zip(rand_a.mask, rand_c.mask, strict=True))
    assert n_isolated(rand_a.mask) == round(0.05 * rand_a.n_eligible)

    scores, mask = global_scores(run("inverse"))
    assert abs(mask.float().mean().item() - 0.05) <= 0.001
    assert scores[mask].max() <= scores[~mask].min()  # the least important entries

    scores, mask = global_scores(run("importance"))
    assert scores[mask].min() >= scores[~mask].max()
    random_overlap = (mask & torch.cat([m.flatten() for m in rand_a.mask])).float().sum()
    assert random_overlap < 0.5 * mask.float().sum()


def test_per_layer_selection_isolates_p_in_every_tensor():
    model, opt = make(IsolationConfig(mask_interval=2, selection="per_layer"))
    for t in range(2):
        train_step(model, opt, t)
    fracs = opt.engine.history[-1]["per_tensor_frac"]
    assert all(abs(f - 0.05) < 1e-3 for f in fracs.values())
    assert opt.engine.history[-1]["tau"] is None


def test_grad_zero_and_lr_scale_modes():
    for mode, gamma in (("grad_zero", 0.0), ("lr_scale", 0.25)):
        model = tiny_llama()
        config = IsolationConfig(mask_interval=2, protect_mode=mode, lr_scale_gamma=gamma)
        engine = ParameterIsolation(model, config)
        opt = IsolatingOptimizer(torch.optim.SGD(model.parameters(), lr=0.5), engine)
        for t in range(2):
            before = snapshot(engine)
            model(**batch(t)).loss.backward()
            grads = [p.grad.clone() for p in engine.params]
            opt.step()
            for p, old, g, m in zip(engine.params, before, grads, engine.mask, strict=True):
                full = old - 0.5 * g
                if mode == "grad_zero":
                    assert torch.equal(p.grad[m], torch.zeros_like(p.grad[m]))
                    assert torch.equal(p.detach()[m], old[m])  # plain SGD: zero grad, zero step
                else:
                    torch.testing.assert_close(p.detach()[m], old[m] + gamma * (full[m] - old[m]))
                torch.testing.assert_close(p.detach()[~m], full[~m])
            opt.zero_grad()
        assert n_isolated(engine.mask) > 0


def test_reset_on_release_zeroes_moments_of_released_entries():
    model = tiny_llama()
    engine = ParameterIsolation(
        model,
        IsolationConfig(mask_interval=1, warmup_steps=1, ema_beta=0.0, moments="reset_on_release"),
    )
    adam = torch.optim.AdamW(model.parameters(), lr=1e-2)
    protection = IsolatingOptimizer(adam, engine, accumulate=False)  # protect/restore around adam
    seen = 0
    for t in range(6):
        model(**batch(t)).loss.backward()
        old_mask = [m.clone() for m in engine.mask]
        engine.accumulate()
        kept = [
            adam.state[p]["exp_avg"].clone() if p in adam.state else None for p in engine.params
        ]
        engine.maybe_refresh(optimizer=adam)
        for p, old, new, m_before in zip(engine.params, old_mask, engine.mask, kept, strict=True):
            released = old & ~new
            if m_before is None or not released.any():
                continue
            seen += 1
            assert torch.equal(adam.state[p]["exp_avg"][released], torch.zeros(int(released.sum())))
            assert adam.state[p]["exp_avg_sq"][released].abs().sum() == 0
            torch.testing.assert_close(adam.state[p]["exp_avg"][~released], m_before[~released])
        protection.protect_before_step()
        adam.step()
        protection.restore_after_step()
        adam.zero_grad()
    assert seen > 0


def test_state_dict_round_trip_matches_uninterrupted_run():
    config = IsolationConfig(mask_interval=2, ema_beta=0.5, moments="reset_on_release")
    model_a, opt_a = make(config)
    for t in range(10):
        train_step(model_a, opt_a, t)

    model_b, opt_b = make(config)
    for t in range(5):
        train_step(model_b, opt_b, t)
    buffer = io.BytesIO()
    torch.save(
        {
            "model": model_b.state_dict(),
            "opt": opt_b.state_dict(),
            "epi": opt_b.engine.state_dict(),
        },
        buffer,
    )
    buffer.seek(0)
    ckpt = torch.load(buffer, weights_only=True)
    model_c, opt_c = make(config, seed=123)  # different init, overwritten by the checkpoint
    model_c.load_state_dict(ckpt["model"])
    opt_c.load_state_dict(ckpt["opt"])
    opt_c.engine.load_state_dict(ckpt["epi"])
    for t in range(5, 10):
        train_step(model_c, opt_c, t)

    for (name, a), c in zip(model_a.named_parameters(), model_c.parameters(), strict=True):
        assert torch.equal(a, c), name
    assert all(torch.equal(a, c) for a, c in zip(opt_a.engine.mask, opt_c.engine.mask, strict=True))
    assert opt_a.engine.history == opt_c.engine.history


def persistent_formula(engine: ParameterIsolation) -> int:
    """4 B EMA per entry and stream; int32 index + uint8 age per isolated entry; int32 indices of
    the first mask; int64 (global) indices of the per-task masks and of the stage memory."""
    n_first = n_isolated(engine.first_mask) if engine.first_mask is not None else 0
    n_tasks = sum(int(m.sum()) for ms in engine.task_masks.values() for m in ms)
    n_mem = n_isolated(engine.memory_mask) if engine.memory_mask is not None else 0
    n_ema = 4 * engine.n_eligible * len(engine.ema)
    return n_ema + 5 * engine.n_isolated + 4 * n_first + 8 * (n_tasks + n_mem)


@pytest.mark.parametrize("iso_ratio", [0.05, 0.10])
def test_persistent_memory_at_most_5_bytes_per_eligible_parameter(iso_ratio):
    config = IsolationConfig(iso_ratio=iso_ratio, mask_interval=2, ema_beta=0.3)
    assert IsolationConfig().iso_ratio == 0.05  # the default config
    model, opt = make(config)
    engine = opt.engine
    assert engine.memory_bytes() == 4 * engine.n_eligible  # only the EMA before the first mask
    for t in range(6):  # three refreshes: the first mask and the current one differ
        train_step(model, opt, t)
    assert engine.history[-1]["jaccard_prev"] < 1.0
    assert engine.memory_bytes() == persistent_formula(engine)
    per_param = engine.memory_bytes() / engine.n_eligible
    assert per_param == pytest.approx(4 + 9 * iso_ratio, abs=1e-3)
    assert per_param <= 5.0
    # transient, only inside a step: int64 indices + fp32 values of the isolated entries
    assert engine.step_transient_bytes() == 12 * engine.n_isolated


def test_sparse_state_matches_dense_views():
    model, opt = make(IsolationConfig(mask_interval=2, ema_beta=0.3))
    engine = opt.engine
    for t in range(6):
        train_step(model, opt, t)
    for idx, m, age, p in zip(engine.indices, engine.mask, engine.age, engine.params, strict=True):
        assert m.dtype == torch.bool and m.shape == p.shape
        assert torch.equal(idx.long(), m.flatten().nonzero().squeeze(1))
        assert idx.dtype == torch.int32 and torch.all(idx[1:] > idx[:-1])
        assert (age[m] >= 1).all() and (age[~m] == 0).all() and age.dtype == torch.uint8
    ages = torch.cat([a.flatten() for a in engine.age])
    stats = engine.history[-1]
    assert int(ages.max()) == stats["age_max"] <= 3
    assert sum(stats["age_hist"].values()) == stats["n_isolated"] == engine.n_isolated
    assert stats["age_mean"] == pytest.approx(float(ages.float().sum()) / engine.n_isolated)
    first = engine.first_mask
    kept = sum(int((a & b).sum()) for a, b in zip(first, engine.mask, strict=True))
    assert stats["overlap_first"] == pytest.approx(kept / n_isolated(first))
    for name, m in zip(engine.names, engine.mask, strict=True):
        assert stats["per_tensor_frac"][name] == pytest.approx(float(m.float().mean()))


def test_per_task_ema_protects_the_other_tasks():
    model, opt = make(IsolationConfig(mask_interval=2, per_task_ema=True))
    engine = opt.engine
    k = round(0.05 * engine.n_eligible)
    for t in range(4):
        engine.set_task(t % 2)
        train_step(model, opt, t)
    assert set(engine.ema) == {0, 1}
    engine.set_task(0)
    assert n_isolated(engine.mask) == k
    assert all(torch.equal(a, b) for a, b in zip(engine.mask, engine.task_masks[1], strict=True))
    engine.set_task(2)  # a new task: both earlier tasks are protected
    assert k < n_isolated(engine.mask) <= 2 * k
    assert engine.memory_bytes() == persistent_formula(engine)  # 3 EMAs: 12 B/param


def test_stage_memory_keeps_previous_stage_top_p():
    config = IsolationConfig(mask_interval=2, stage_memory=True, stage_memory_ratio=0.02)
    model, opt = make(config)
    engine = opt.engine
    for t in range(4):
        train_step(model, opt, t)
    n_mem = engine.end_stage()
    assert n_mem == round(0.02 * engine.n_eligible)
    memory = [m.clone() for m in engine.memory_mask]
    for t in range(100, 104):  # the next stage
        train_step(model, opt, t)
    k = round(0.05 * engine.n_eligible)
    assert k <= n_isolated(engine.mask) <= k + n_mem
    assert all(torch.equal(m & mem, mem) for m, mem in zip(engine.mask, memory, strict=True))


def plain_adamw_step(model: torch.nn.Module, adamw: torch.optim.Optimizer, step: int) -> None:
    """The baseline step: the same clipping (same order of tensors) as IsolatingOptimizer."""
    model(**batch(step)).loss.backward()
    params = [p for g in adamw.param_groups for p in g["params"] if p.grad is not None]
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    adamw.step()
    adamw.zero_grad(set_to_none=True)


def test_protect_mode_none_observes_only():
    # reset_on_release would change the moments; observe-only must not touch them either
    config = IsolationConfig(
        mask_interval=2, ema_beta=0.5, protect_mode="none", moments="reset_on_release"
    )
    model, opt = make(config, max_grad_norm=1.0)
    engine = opt.engine
    plain, adamw = make(config)  # the same model and AdamW groups; its wrapper is not used
    adamw = adamw.optimizer
    moved = []
    for t in range(8):
        before, mask = snapshot(engine), engine.mask
        train_step(model, opt, t)
        plain_adamw_step(plain, adamw, t)
        pairs = zip(engine.params, before, mask, strict=True)
        moved += [bool((p.detach()[m] != b[m]).all()) for p, b, m in pairs if m.any()]
    for (name, a), b in zip(model.named_parameters(), plain.parameters(), strict=True):
        assert torch.equal(a, b), name  # bit-identical to plain AdamW
    assert moved and all(moved)  # "isolated" entries are updated
    assert [h["step"] for h in engine.history] == [2, 4, 6, 8]
    assert engine.n_isolated == round(0.05 * engine.n_eligible)
    assert engine.history[-1]["jaccard_prev"] is not None and engine.history[-1]["released"] > 0
    assert engine.step_transient_bytes() == 0


def test_external_mask_is_kept_and_never_refreshed():
    model, opt = make(IsolationConfig(mask_source="external", mask_interval=2))  # K is unused
    engine = opt.engine
    assert engine.ema == {} and engine.memory_bytes() == 0  # no importance is kept
    gen = torch.Generator().manual_seed(0)
    masks = [torch.rand(p.shape, generator=gen) < 0.1 for p in engine.params]
    stats = engine.set_mask(masks)
    assert stats["source"] == "external" and stats["tau"] is None
    assert stats["n_isolated"] == n_isolated(masks) == engine.n_isolated
    for t in range(6):
        before = snapshot(engine)
        train_step(model, opt, t)
        for p, old, m in zip(engine.params, before, masks, strict=True):
            assert torch.equal(p.detach()[m], old[m])
            assert (p.detach()[~m] != old[~m]).float().mean() > 0.99
    assert len(engine.history) == 1 and not engine.due() and engine.step == 6
    assert all(torch.equal(a, b) for a, b in zip(engine.mask, masks, strict=True))
    with pytest.raises(ValueError, match="external"):
        engine.refresh()

    grown = [m | (torch.rand(m.shape, generator=gen) < 0.05) for m in masks]  # a later stage
    stats = engine.set_mask(grown)
    assert stats["released"] == 0 and stats["added"] == n_isolated(grown) - n_isolated(masks)
    assert stats["overlap_first"] == 1.0 and stats["jaccard_prev"] < 1.0
    for age, m, g in zip(engine.age, masks, grown, strict=True):
        assert (age[m] == 2).all() and (age[g & ~m] == 1).all()
    assert engine.memory_bytes() == persistent_formula(engine)

    with pytest.raises(ValueError, match="masks for"):
        engine.set_mask(masks[:-1])
    with pytest.raises(ValueError, match="bool mask"):
        engine.set_mask([m.float() for m in masks])
    with pytest.raises(ValidationError):
        IsolationConfig(mask_source="external", per_task_ema=True)


def test_set_mask_on_importance_engine_lasts_until_the_next_refresh():
    model, opt = make(IsolationConfig(mask_interval=4, warmup_steps=2))
    engine = opt.engine
    for t in range(2):
        train_step(model, opt, t)
    manual = [torch.zeros(p.shape, dtype=torch.bool) for p in engine.params]
    manual[0][0, :3] = True
    engine.set_mask(manual)
    for t in range(2, 5):  # steps 3..5: no refresh
        train_step(model, opt, t)
        assert engine.n_isolated == 3
    train_step(model, opt, 5)  # step 6 refreshes from the importance EMA
    assert engine.n_isolated == round(0.05 * engine.n_eligible)
    assert [h["source"] for h in engine.history] == ["importance", "external", "importance"]


def test_loads_version_1_dense_state():
    config = IsolationConfig(mask_interval=2, ema_beta=0.3)
    model, opt = make(config)
    a = opt.engine
    for t in range(6):
        train_step(model, opt, t)
    v1 = {
        "version": 1,
        "config": config.model_dump(),
        "names": a.names,
        "step": a.step,
        "n_refresh": a.n_refresh,
        "task": None,
        "ema": dict(a.ema),
        "mask": a.mask,
        "age": [x.to(torch.int16) for x in a.age],
        "first_mask": a.first_mask,
        "task_masks": {},
        "memory_mask": None,
        "history": a.history,
    }
    b = ParameterIsolation(tiny_llama(), config)
    b.load_state_dict(v1)
    for x, y in ((a.mask, b.mask), (a.age, b.age), (a.first_mask, b.first_mask)):
        assert all(torch.equal(u, v) for u, v in zip(x, y, strict=True))
    assert b.memory_bytes() == a.memory_bytes() and b.state_dict()["version"] == 2


def test_lora_eligible_tensors_are_adapters():
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(
        tiny_llama(), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    )
    opt = build_isolating_optimizer(model, IsolationConfig(mask_interval=2), lr=1e-2)
    engine = opt.engine
    assert len(engine.names) == 2 * 2 * 2
    assert all(
        ("lora_A" in n or "lora_B" in n) and p.requires_grad
        for n, p in zip(engine.names, engine.params, strict=True)
    )
    for t in range(3):
        train_step(model, opt, t)
    before = snapshot(engine)
    train_step(model, opt, 3)
    assert n_isolated(engine.mask) == round(0.05 * engine.n_eligible)
    assert all(
        torch.equal(p.detach()[m], b[m])
        for p, b, m in zip(engine.params, before, engine.mask, strict=True)
    )


def test_runs_under_initialised_gloo_process_group(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/pg", rank=0, world_size=1)
    try:
        model = torch.nn.parallel.DistributedDataParallel(tiny_llama())
        opt = build_isolating_optimizer(model, IsolationConfig(mask_interval=2), lr=1e-2)
        assert all(n.startswith("module.model.layers.") for n in opt.engine.names)
        for t in range(4):
            train_step(model, opt, t)
        assert len(opt.engine.history) == 2
    finally:
        dist.destroy_process_group()


class _CheckIsolated(TrainerCallback):
    """Snapshots before each optimizer step; compares the isolated entries after it."""

    def __init__(self, engine: ParameterIsolation) -> None:
        self.engine, self.before, self.checked = engine, None, []

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        self.before = snapshot(self.engine)

    def on_optimizer_step(self, args, state, control, **kwargs):
        pairs = zip(self.engine.params, self.before, self.engine.mask, strict=True)
        self.checked.append(all(torch.equal(p.detach()[m], b[m]) for p, b, m in pairs))


def run_trainer(out_dir, max_steps: int, resume: str | None = None):
    args = TrainingArguments(
        output_dir=str(out_dir),
        max_steps=max_steps,
        per_device_train_batch_size=4,
        learning_rate=1e-2,
        weight_decay=0.1,
        max_grad_norm=1.0,
        logging_steps=1,
        save_steps=3,
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    model = tiny_llama()
    opt = build_isolating_optimizer(
        model, IsolationConfig(mask_interval=2, ema_beta=0.5), args=args
    )
    data = [{"input_ids": ids, "labels": ids} for ids in torch.randint(VOCAB, (48, 16)).tolist()]
    checker = _CheckIsolated(opt.engine)
    trainer = Trainer(
        model=model, args=args, train_dataset=data, optimizers=(opt, None), callbacks=[checker]
    )
    callback = attach_isolation(trainer)
    trainer.train(resume_from_checkpoint=resume)
    return trainer, opt, callback, checker


def test_trainer_integration_and_resume(tmp_path):
    torch.manual_seed(0)
    trainer, opt, callback, checker = run_trainer(tmp_path / "a", max_steps=6)
    assert [s["step"] for s in callback.history] == [2, 4, 6]
    assert opt.max_grad_norm == 1.0 and trainer.args.max_grad_norm == 0.0  # clipping moved
    assert checker.checked and all(checker.checked)
    assert n_isolated(opt.engine.mask) == round(0.05 * opt.engine.n_eligible)
    logged = [h for h in trainer.state.log_history if "epi/frac_isolated" in h]
    assert [h["step"] for h in logged] == [2, 4, 6]
    assert (tmp_path / "a" / "checkpoint-3" / EPI_STATE_NAME).is_file()
    assert (tmp_path / "a" / "epi_history.json").is_file()

    torch.manual_seed(0)
    resumed, opt_r, _, _ = run_trainer(
        tmp_path / "a", max_steps=6, resume=str(tmp_path / "a" / "checkpoint-3")
    )
    assert opt_r.engine.step == 6 and len(opt_r.engine.history) == 3
    assert all(torch.equal(a, b) for a, b in zip(opt.engine.mask, opt_r.engine.mask, strict=True))
    for a, b in zip(trainer.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(a, b)
