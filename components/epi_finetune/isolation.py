"""Evolving Parameter Isolation (EPI): online importance, a revocable top-p mask, protected steps.

Spec: ``shared/methods/epi.md``. The engine keeps, per eligible tensor, an fp32 EMA of squared
raw gradients; every K optimizer steps it normalises the EMA within each tensor, isolates the
global top-p% and keeps those entries fixed across ``optimizer.step()`` until a later refresh
releases them. Usable from any torch loop::

    engine = ParameterIsolation(model, IsolationConfig(iso_ratio=0.05, mask_interval=25))
    adamw = torch.optim.AdamW(model.parameters(), lr=1e-3)
    opt = IsolatingOptimizer(adamw, engine, max_grad_norm=1.0)
    for batch in batches:
        model(**batch).loss.backward()
        opt.step()  # accumulate -> clip -> refresh -> protect -> AdamW -> restore
        opt.zero_grad(set_to_none=True)

Under DDP the gradients are already all-reduced when ``step()`` runs, so every rank computes the
same EMA and the same mask; the random parts (random masks, threshold subsamples) use generators
seeded from (seed, refresh index), identical on every rank. No collective is needed.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from components.common.params import IsolationConfig, NormMode

# A transformer block: `model.layers.3.`, `transformer.h.0.`, `blocks.2.`, `encoder.layer.5.`.
_BLOCK_RE = re.compile(r"(^|\.)(layers|h|blocks|block|layer)\.\d+\.")
_AGE_MAX = torch.iinfo(torch.int16).max - 1
_AGE_BINS = ((1, 1), (2, 3), (4, 7), (8, 15), (16, _AGE_MAX + 1))


def eligible_parameters(
    model: nn.Module, eligible: str = "blocks"
) -> list[tuple[str, nn.Parameter]]:
    """Trainable tensors that may be isolated.

    ``blocks``: >=2-D weights inside transformer blocks (embeddings, lm_head, norms and biases stay
    trainable); for a PEFT LoRA model, the trainable ``lora_A``/``lora_B`` weights. ``all``: every
    trainable tensor.
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if eligible == "all":
        return named
    lora = [(n, p) for n, p in named if p.ndim >= 2 and ("lora_A" in n or "lora_B" in n)]
    if lora:
        return lora
    return [(n, p) for n, p in named if p.ndim >= 2 and _BLOCK_RE.search(n)]


def normalise_scores(scores: Tensor, mode: NormMode = "mean", eps: float = 1e-12) -> Tensor:
    """Normalise one tensor's importance so a single global threshold compares tensors fairly."""
    f = scores.float()
    if mode == "mean":
        return f / (f.mean() + eps)
    if mode == "max":
        return f / (f.max() + eps)
    if mode == "minmax":
        lo, hi = f.min(), f.max()
        return (f - lo) / (hi - lo + eps)
    if mode == "zscore":
        return (f - f.mean()) / (f.std(correction=0) + eps)
    if mode == "rank":
        flat = f.flatten()
        ranks = torch.empty_like(flat)
        ranks[flat.argsort()] = torch.arange(flat.numel(), device=f.device, dtype=f.dtype)
        return (ranks / max(flat.numel() - 1, 1)).view_as(f)
    if mode == "none":
        return f
    raise ValueError(f"unknown norm {mode!r}")


def _generator(device: torch.device, seed: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed % (2**63))


def _mix(*keys: int) -> int:
    seed = 0
    for k in keys:
        seed = (seed * 1_000_003 + k) % (2**63)
    return seed


def global_threshold(
    scores: Sequence[Tensor],
    ratio: float,
    max_exact: int = 16_000_000,
    sample_size: int = 10_000_000,
    seed: int = 0,
) -> float:
    """The (1 - ratio) quantile of all scores together.

    Exact ``kthvalue`` up to ``max_exact`` elements (``torch.quantile`` rejects > 2**24 inputs);
    above that, from a seeded uniform subsample of ``sample_size`` scores, spread over the tensors
    in proportion to their size.
    """
    n_total = sum(s.numel() for s in scores)
    if round(ratio * n_total) == 0:
        return math.inf
    device = scores[0].device
    if n_total <= max_exact:
        flat = torch.cat([s.detach().flatten().float().to(device) for s in scores])
    else:
        parts = []
        for i, s in enumerate(scores):
            n_i = max(1, round(sample_size * s.numel() / n_total))
            idx = torch.randint(
                s.numel(), (n_i,), generator=_generator(s.device, _mix(seed, i)), device=s.device
            )
            parts.append(s.detach().flatten()[idx].float().to(device))
        flat = torch.cat(parts)
    k = max(1, round(ratio * flat.numel()))
    return flat.kthvalue(flat.numel() - k + 1).values.item()


def top_fraction_masks(
    scores: Sequence[Tensor],
    ratio: float,
    max_exact: int = 16_000_000,
    sample_size: int = 10_000_000,
    seed: int = 0,
) -> tuple[list[Tensor], float]:
    """Boolean masks of the top ``ratio`` of all scores, and the threshold tau.

    Up to ``max_exact`` elements, ``topk`` picks exactly round(ratio * N) entries (ties broken
    arbitrarily); above, entries >= a sampled ``global_threshold`` are taken.
    """
    n_total = sum(s.numel() for s in scores)
    k = round(ratio * n_total)
    if k == 0:
        return [torch.zeros_like(s, dtype=torch.bool) for s in scores], math.inf
    if n_total > max_exact:
        tau = global_threshold(scores, ratio, max_exact, sample_size, seed)
        masks = [s >= tau for s in scores]
        # Many entries tied at tau (e.g. exact zeros) would all be isolated; drop the ties then.
        if sum(int(m.sum()) for m in masks) > 2 * k:
            masks = [s > tau for s in scores]
        return masks, tau
    device = scores[0].device
    flat = torch.cat([s.detach().flatten().float().to(device) for s in scores])
    values, idx = flat.topk(k, sorted=False)
    flat_mask = torch.zeros(n_total, dtype=torch.bool, device=device)
    flat_mask[idx] = True
    parts = flat_mask.split([s.numel() for s in scores])
    masks = [m.view(s.shape).to(s.device) for m, s in zip(parts, scores, strict=True)]
    return masks, values.min().item()


def reset_moments(
    optimizer: torch.optim.Optimizer, params: Sequence[Tensor], masks: Sequence[Tensor]
) -> None:
    """Zero every per-element optimizer state (Adam m and v, momentum) on the masked entries."""
    for p, m in zip(params, masks, strict=True):
        for value in optimizer.state.get(p, {}).values():
            if torch.is_tensor(value) and value.shape == p.shape:
                value.masked_fill_(m, 0)


def _count(masks: Iterable[Tensor]) -> int:
    return sum(int(m.sum()) for m in masks)


class ParameterIsolation:
    """EPI state over the eligible tensors of a model: EMA F, mask M, mask age, step counter."""

    def __init__(
        self,
        model: nn.Module | Iterable[tuple[str, nn.Parameter]],
        config: IsolationConfig | None = None,
    ) -> None:
        self.config = config or IsolationConfig()
        named = (
            eligible_parameters(model, self.config.eligible)
            if isinstance(model, nn.Module)
            else list(model)
        )
        if not named:
            raise ValueError(f"no eligible parameters for eligible={self.config.eligible!r}")
        self.names = [n for n, _ in named]
        self.params = [p for _, p in named]
        self.n_eligible = sum(p.numel() for p in self.params)
        self.step = 0  # optimizer steps seen by accumulate()
        self.n_refresh = 0
        self.task: Hashable = None
        # One EMA per stream: key None for the mixed stream, the task id under per_task_ema.
        self.ema: dict[Hashable, list[Tensor]] = {}
        if not self.config.per_task_ema:
            self.ema[None] = self._zeros(torch.float32)
        self.mask = self._zeros(torch.bool)
        self.age = self._zeros(torch.int16)  # consecutive refreshes isolated (saturating)
        self.first_mask: list[Tensor] | None = None
        self.task_masks: dict[Hashable, list[Tensor]] = {}  # per_task_ema: TopP(F_s)
        self.memory_mask: list[Tensor] | None = None  # stage_memory: union of TopP(S_prev)
        self.history: list[dict[str, Any]] = []
        self._saved: list[Tensor] = []

    def _zeros(self, dtype: torch.dtype) -> list[Tensor]:
        return [torch.zeros(p.shape, dtype=dtype, device=p.device) for p in self.params]

    # ---- 1) online importance -------------------------------------------------------------
    @torch.no_grad()
    def accumulate(self) -> None:
        """F <- beta F + (1 - beta) g*g from the raw .grad (call before clipping and masking).

        No bias correction: it is one scalar per tensor, cancelled by the normalisation.
        """
        beta = self.config.ema_beta
        key = self.task if self.config.per_task_ema else None
        ema = self.ema.setdefault(key, self._zeros(torch.float32))
        for f, p in zip(ema, self.params, strict=True):
            f.mul_(beta)
            if p.grad is not None:
                g = p.grad.detach().float()
                f.addcmul_(g, g, value=1.0 - beta)
        self.step += 1

    # ---- 2) periodic refresh --------------------------------------------------------------
    def due(self, step: int | None = None) -> bool:
        t = self.step if step is None else step
        t0, k = self.config.warmup, self.config.interval
        return t == t0 if k is None else t >= t0 and (t - t0) % k == 0

    def maybe_refresh(
        self, step: int | None = None, optimizer: torch.optim.Optimizer | None = None
    ) -> dict[str, Any] | None:
        """Refresh the mask when ``step`` (default: steps accumulated) is a refresh step.

        ``optimizer`` is needed for ``moments='reset_on_release'``. Returns the drift stats or None.
        """
        return self.refresh(optimizer) if self.due(step) else None

    @torch.no_grad()
    def refresh(self, optimizer: torch.optim.Optimizer | None = None) -> dict[str, Any]:
        """Recompute M now and return drift statistics (also appended to ``history``)."""
        cfg = self.config
        self.n_refresh += 1
        if cfg.per_task_ema:
            taus = {}
            for key, ema in self.ema.items():
                self.task_masks[key], taus[key] = self._select(ema, cfg.iso_ratio, _salt(key))
            new, tau = self._task_union(), taus.get(self.task)
        else:
            new, tau = self._select(self.ema[None], cfg.iso_ratio, 0)
            if self.memory_mask is not None:
                new = [a | b for a, b in zip(new, self.memory_mask, strict=True)]
        return self._commit(new, tau, optimizer)

    def _select(
        self, ema: list[Tensor], ratio: float, salt: int
    ) -> tuple[list[Tensor], float | None]:
        cfg = self.config
        seed = _mix(cfg.seed, self.n_refresh, salt)
        if cfg.mask_source == "random":
            scores = [
                torch.rand(p.shape, generator=_generator(p.device, _mix(seed, i)), device=p.device)
                for i, p in enumerate(self.params)
            ]
        else:
            scores = [normalise_scores(f, cfg.norm, cfg.eps) for f in ema]
            if cfg.mask_source == "inverse":  # sign check: isolate the least important entries
                scores = [-s for s in scores]
        limits = (cfg.exact_quantile_max_elements, cfg.quantile_sample_size)
        if cfg.selection == "per_layer":
            masks = [
                top_fraction_masks([s], ratio, *limits, _mix(seed, i))[0][0]
                for i, s in enumerate(scores)
            ]
            return masks, None
        return top_fraction_masks(scores, ratio, *limits, seed)

    def _task_union(self) -> list[Tensor]:
        """per_task_ema: M = union over tasks s != current task of TopP(F_s)."""
        union = self._zeros(torch.bool)
        for key, masks in self.task_masks.items():
            if key != self.task:
                union = [a | b for a, b in zip(union, masks, strict=True)]
        return union

    def _commit(
        self, new: list[Tensor], tau: float | None, optimizer: torch.optim.Optimizer | None
    ) -> dict[str, Any]:
        cfg, old = self.config, self.mask
        n_old, n_new = _count(old), _count(new)
        n_inter = _count(a & b for a, b in zip(old, new, strict=True))
        released = [a & ~b for a, b in zip(old, new, strict=True)]
        if cfg.moments == "reset_on_release":
            if optimizer is None:
                raise ValueError("moments='reset_on_release' needs the optimizer in maybe_refresh")
            reset_moments(optimizer, self.params, released)
        for a, m in zip(self.age, new, strict=True):
            a.clamp_(max=_AGE_MAX).add_(1).masked_fill_(~m, 0)
        if self.first_mask is None and n_new > 0:
            self.first_mask = [m.clone() for m in new]
        self.mask = new
        union = n_old + n_new - n_inter
        jaccard = n_inter / union if n_old > 0 and union > 0 else None
        first = None
        if self.first_mask is not None:
            kept = _count(a & b for a, b in zip(self.first_mask, new, strict=True))
            first = kept / max(_count(self.first_mask), 1)
        ages = [int(sum(((a >= lo) & (a <= hi)).sum() for a in self.age)) for lo, hi in _AGE_BINS]
        p = cfg.iso_ratio
        stats = {
            "step": self.step,
            "refresh": self.n_refresh,
            "tau": tau,
            "n_eligible": self.n_eligible,
            "n_isolated": n_new,
            "frac_isolated": n_new / self.n_eligible,
            "jaccard_prev": jaccard,
            "churn": None if jaccard is None else 1.0 - jaccard,
            "overlap_first": first,
            "jaccard_random": p / (2.0 - p),
            "released": n_old - n_inter,
            "added": n_new - n_inter,
            # Ages count refresh windows (about K steps each); mostly-old masks = static isolation.
            "age_mean": sum(float(a.float().sum()) for a in self.age) / max(n_new, 1),
            "age_max": max(int(a.max()) for a in self.age),
            "age_hist": {f"{lo}-{hi}": n for (lo, hi), n in zip(_AGE_BINS, ages, strict=True)},
            "per_tensor_frac": {
                name: int(m.sum()) / m.numel() for name, m in zip(self.names, new, strict=True)
            },
        }
        self.history.append(stats)
        return stats

    # ---- [D] extensions -------------------------------------------------------------------
    def set_task(self, task_id: Hashable) -> None:
        """Declare the task of the coming optimizer step (per_task_ema); a no-op otherwise."""
        self.task = task_id
        if self.config.per_task_ema:
            self.ema.setdefault(task_id, self._zeros(torch.float32))
            if self.task_masks:
                self.mask = self._task_union()

    @torch.no_grad()
    def end_stage(self) -> int:
        """stage_memory: remember TopP_mem of the current normalised scores; returns its size.

        Memories of all finished stages are kept (a union), so the first stage stays protected in
        a three-stage sequence; the current mask is widened at once.
        """
        if not self.config.stage_memory:
            raise ValueError("end_stage() needs stage_memory=True")
        mem, _ = self._select(self.ema[None], self.config.memory_ratio, 1)
        if self.memory_mask is not None:
            mem = [a | b for a, b in zip(mem, self.memory_mask, strict=True)]
        self.memory_mask = mem
        self.mask = [a | b for a, b in zip(self.mask, mem, strict=True)]
        return _count(mem)

    # ---- 3) protection around optimizer.step() --------------------------------------------
    @torch.no_grad()
    def protect_before_step(self) -> None:
        """final_delta/lr_scale: save the p*N isolated values; grad_zero: zero their gradient."""
        self._saved = []
        for p, m in zip(self.params, self.mask, strict=True):
            if self.config.protect_mode == "grad_zero":
                if p.grad is not None:
                    p.grad.masked_fill_(m, 0)
            else:
                self._saved.append(p.detach().masked_select(m))

    @torch.no_grad()
    def restore_after_step(self) -> None:
        """final_delta: write the saved values back bit-identically (cancels AdamW's whole delta,
        weight decay included); lr_scale: keep only gamma times the delta on isolated entries."""
        if self.config.protect_mode == "grad_zero":
            return
        gamma = self.config.lr_scale_gamma
        for p, m, old in zip(self.params, self.mask, self._saved, strict=True):
            if self.config.protect_mode == "lr_scale":
                old = old + gamma * (p.detach().masked_select(m) - old)
            p.detach().masked_scatter_(m, old)
        self._saved = []

    # ---- checkpoints and accounting -------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Engine state; tensors are shared with the engine, as in ``nn.Module.state_dict``."""
        return {
            "version": 1,
            "config": self.config.model_dump(),
            "names": list(self.names),
            "step": self.step,
            "n_refresh": self.n_refresh,
            "task": self.task,
            "ema": dict(self.ema),
            "mask": self.mask,
            "age": self.age,
            "first_mask": self.first_mask,
            "task_masks": dict(self.task_masks),
            "memory_mask": self.memory_mask,
            "history": list(self.history),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if list(state["names"]) != self.names:
            raise ValueError("isolation state was saved for different eligible parameters")

        def place(ts: list[Tensor] | None) -> list[Tensor] | None:
            if ts is None:
                return None
            return [t.to(device=p.device, copy=True) for t, p in zip(ts, self.params, strict=True)]

        self.step, self.n_refresh, self.task = state["step"], state["n_refresh"], state["task"]
        self.ema = {k: place(v) for k, v in state["ema"].items()}
        self.mask, self.age = place(state["mask"]), place(state["age"])
        self.first_mask = place(state["first_mask"])
        self.task_masks = {k: place(v) for k, v in state["task_masks"].items()}
        self.memory_mask = place(state["memory_mask"])
        self.history = list(state["history"])

    def memory_bytes(self) -> int:
        """Persistent extra bytes (EMA, masks, ages). The step also holds p*N values transiently."""
        tensors = [*self.mask, *self.age, *(self.first_mask or []), *(self.memory_mask or [])]
        tensors += [t for ts in self.ema.values() for t in ts]
        tensors += [t for ts in self.task_masks.values() for t in ts]
        return sum(t.numel() * t.element_size() for t in tensors)


def _salt(key: Hashable) -> int:
    # crc32, not hash(): str hashes differ between processes, and ranks must agree.
    return zlib.crc32(repr(key).encode())


class IsolatingOptimizer(torch.optim.Optimizer):
    """Wraps any torch optimizer so ``step()`` runs the EPI step around it.

    ``step()``: accumulate the EMA from raw grads -> clip (``max_grad_norm``) -> maybe refresh M ->
    protect -> inner step -> restore. Clip here, not before ``step()``, so the EMA sees unclipped
    gradients. ``super().__init__`` is deliberately not called: param_groups and state are the inner
    optimizer's (as in accelerate's ``AcceleratedOptimizer``), so LR schedulers, Trainer
    checkpoints and ``load_state_dict`` all act on the inner optimizer.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        engine: ParameterIsolation,
        max_grad_norm: float | None = None,
        accumulate: bool = True,
    ) -> None:
        self.optimizer = optimizer
        self.engine = engine
        self.max_grad_norm = max_grad_norm
        self.accumulate = accumulate  # False if the caller feeds engine.accumulate() itself
        self.last_grad_norm: Tensor | None = None
        self.last_refresh: dict[str, Any] | None = None

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.optimizer.param_groups

    @param_groups.setter
    def param_groups(self, value: list[dict[str, Any]]) -> None:
        self.optimizer.param_groups = value

    @property
    def state(self) -> Any:
        return self.optimizer.state

    @state.setter
    def state(self, value: Any) -> None:
        self.optimizer.state = value

    @property
    def defaults(self) -> dict[str, Any]:
        return self.optimizer.defaults

    @defaults.setter
    def defaults(self, value: dict[str, Any]) -> None:
        self.optimizer.defaults = value

    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if self.accumulate:
            self.engine.accumulate()
        if self.max_grad_norm:
            params = [p for g in self.param_groups for p in g["params"] if p.grad is not None]
            self.last_grad_norm = nn.utils.clip_grad_norm_(params, self.max_grad_norm)
        stats = self.engine.maybe_refresh(optimizer=self.optimizer)
        if stats is not None:
            self.last_refresh = stats
        self.engine.protect_before_step()
        self.optimizer.step()
        self.engine.restore_after_step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return self.optimizer.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state_dict)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        self.optimizer.add_param_group(param_group)

    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return f"IsolatingOptimizer({self.optimizer!r}, p={self.engine.config.iso_ratio})"


def build_isolating_optimizer(
    model: nn.Module,
    config: IsolationConfig | None = None,
    args: Any = None,
    *,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    betas: tuple[float, float] = (0.9, 0.999),
    adam_eps: float = 1e-8,
    max_grad_norm: float | None = None,
) -> IsolatingOptimizer:
    """AdamW (no decay for <2-D tensors: biases, norms) wrapped with EPI over ``model``.

    ``args``: anything with TrainingArguments' fields (learning_rate, weight_decay, adam_beta1,
    adam_beta2, adam_epsilon, max_grad_norm); they override the keyword defaults.
    """
    if args is not None:
        lr, weight_decay = args.learning_rate, args.weight_decay
        betas, adam_eps = (args.adam_beta1, args.adam_beta2), args.adam_epsilon
        max_grad_norm = args.max_grad_norm or None
    trainable = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in trainable if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in trainable if p.ndim < 2], "weight_decay": 0.0},
    ]
    inner = torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, betas=betas, eps=adam_eps)
    engine = ParameterIsolation(model, config)
    return IsolatingOptimizer(inner, engine, max_grad_norm=max_grad_norm)
