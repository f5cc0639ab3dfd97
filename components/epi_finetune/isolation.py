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

Memory. The mask is stored sparsely: per eligible tensor, the sorted flat indices of its isolated
entries (int32; int64 only for a tensor of >= 2**31 entries) and a uint8 age per isolated entry
(refreshes in a row, saturating at 255), plus the indices of the first mask (for the overlap
statistic). Persistent state per eligible parameter = 4 B (EMA) + 5p B (indices, ages) + 4p_first
B, about 4 + 9p: 4.45 B at p = 5%, 4.09 B at p = 1%, at most 5 B up to p = 11%. The dense bool
mask is never stored: ``mask`` builds it on demand (diagnostics, tests). A step holds, transiently,
the int64 indices and the values of the p*N isolated entries (12p B per parameter in fp32).
``per_task_ema`` adds 4 B + 4p B per task, ``stage_memory`` 4p_mem B per remembered stage;
``mask_source='external'`` keeps no EMA at all.

Under DDP the gradients are already all-reduced when ``step()`` runs, so every rank computes the
same EMA and the same mask; the random parts (random masks, threshold subsamples) use generators
seeded from (seed, refresh index), identical on every rank. No collective is needed. An external
mask (``set_mask``) must be the same on every rank (compute it from the synchronised weights).
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
_AGE_MAX = torch.iinfo(torch.uint8).max
_AGE_BINS = ((1, 1), (2, 3), (4, 7), (8, 15), (16, _AGE_MAX))
_STATE_VERSION = 2
_MAX_LOG_SCALE = 20 * math.log(2)  # lazily scaled EMA: fold before beta**-n exceeds 2**20


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


# ---- sparse index sets: sorted flat indices of the True entries of one tensor ----------------
def _index_dtype(numel: int) -> torch.dtype:
    return torch.int32 if numel < 2**31 else torch.int64


def mask_to_indices(mask: Tensor) -> Tensor:
    """Sorted flat (row-major) indices of the True entries, int64."""
    return mask.reshape(-1).nonzero().squeeze(1)


def indices_to_mask(indices: Tensor, like: Tensor) -> Tensor:
    """Dense bool mask shaped like ``like`` with True at ``indices``."""
    flat = torch.zeros(like.numel(), dtype=torch.bool, device=like.device)
    flat[indices.to(device=like.device, dtype=torch.long)] = True
    return flat.view(like.shape)


def _member(sorted_ref: Tensor, query: Tensor) -> tuple[Tensor, Tensor]:
    """For each entry of ``query``: is it in ``sorted_ref``, and at which position."""
    if sorted_ref.numel() == 0 or query.numel() == 0:
        return (
            torch.zeros(query.shape, dtype=torch.bool, device=query.device),
            torch.zeros(query.shape, dtype=torch.long, device=query.device),
        )
    query = query.to(sorted_ref.dtype)
    pos = torch.searchsorted(sorted_ref, query).clamp_(max=sorted_ref.numel() - 1)
    return sorted_ref[pos] == query, pos


def _union(parts: Iterable[Tensor], device: torch.device) -> Tensor:
    parts = [p.long() for p in parts if p.numel()]
    if not parts:
        return torch.zeros(0, dtype=torch.long, device=device)
    return parts[0] if len(parts) == 1 else torch.unique(torch.cat(parts))


# ---- global selection -------------------------------------------------------------------------
def _sampled_threshold(
    score: Callable[[int], Tensor],
    sizes: Sequence[int],
    ratio: float,
    sample_size: int,
    seed: int,
) -> float:
    """(1 - ratio) quantile from a seeded uniform subsample spread over the tensors by size."""
    n_total = sum(sizes)
    parts = []
    for i, n in enumerate(sizes):
        s = score(i)
        n_i = max(1, round(sample_size * n / n_total))
        idx = torch.randint(
            n, (n_i,), generator=_generator(s.device, _mix(seed, i)), device=s.device
        )
        parts.append(s.detach().flatten()[idx].float().to(parts[0].device if parts else s.device))
    flat = torch.cat(parts)
    k = max(1, round(ratio * flat.numel()))
    return flat.kthvalue(flat.numel() - k + 1).values.item()


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
    sizes = [s.numel() for s in scores]
    n_total = sum(sizes)
    if round(ratio * n_total) == 0:
        return math.inf
    if n_total > max_exact:
        return _sampled_threshold(scores.__getitem__, sizes, ratio, sample_size, seed)
    device = scores[0].device
    flat = torch.cat([s.detach().flatten().float().to(device) for s in scores])
    k = max(1, round(ratio * flat.numel()))
    return flat.kthvalue(flat.numel() - k + 1).values.item()


def top_fraction_indices(
    score: Callable[[int], Tensor],
    sizes: Sequence[int],
    ratio: float,
    max_exact: int = 16_000_000,
    sample_size: int = 10_000_000,
    seed: int = 0,
) -> tuple[list[Tensor], float]:
    """Sorted int64 flat indices, per tensor, of the top ``ratio`` of all scores; and tau.

    ``score(i)`` computes tensor i's scores (called once per tensor on the exact path, so only
    one flat fp32 copy of all scores is alive; twice on the sampled path, where no copy is kept).
    Up to ``max_exact`` elements, ``topk`` picks exactly round(ratio * N) entries (ties broken
    arbitrarily); above, entries >= a sampled threshold (> it, when ties would double the set).
    """
    n_total = sum(sizes)
    k = round(ratio * n_total)
    if k == 0:
        return [torch.zeros(0, dtype=torch.long) for _ in sizes], math.inf
    if n_total > max_exact:
        tau = _sampled_threshold(score, sizes, ratio, sample_size, seed)
        picked, ties = [], []
        for i in range(len(sizes)):
            s = score(i).reshape(-1)
            idx = (s >= tau).nonzero().squeeze(1)
            picked.append(idx)
            ties.append(s[idx] == tau)
        if sum(int(i.numel()) for i in picked) > 2 * k:  # e.g. many exact zeros tied at tau
            picked = [i[~t] for i, t in zip(picked, ties, strict=True)]
        return picked, tau
    first = score(0)
    flat = torch.empty(n_total, dtype=torch.float32, device=first.device)
    offsets = [0]
    for i, n in enumerate(sizes):
        s = first if i == 0 else score(i)
        flat[offsets[-1] : offsets[-1] + n].copy_(s.reshape(-1))
        offsets.append(offsets[-1] + n)
    values, idx = flat.topk(k, sorted=False)
    del flat
    idx = idx.sort().values
    bounds = torch.searchsorted(idx, torch.tensor(offsets, device=idx.device)).tolist()
    picked = [idx[bounds[i] : bounds[i + 1]] - offsets[i] for i in range(len(sizes))]
    return picked, values.min().item()


def top_fraction_masks(
    scores: Sequence[Tensor],
    ratio: float,
    max_exact: int = 16_000_000,
    sample_size: int = 10_000_000,
    seed: int = 0,
) -> tuple[list[Tensor], float]:
    """Boolean masks of the top ``ratio`` of all scores, and the threshold tau (see
    ``top_fraction_indices``)."""
    picked, tau = top_fraction_indices(
        lambda i: scores[i].detach().float(),
        [s.numel() for s in scores],
        ratio,
        max_exact,
        sample_size,
        seed,
    )
    return [indices_to_mask(i, s) for i, s in zip(picked, scores, strict=True)], tau


def reset_moments(
    optimizer: torch.optim.Optimizer, params: Sequence[Tensor], masks: Sequence[Tensor]
) -> None:
    """Zero every per-element optimizer state (Adam m and v, momentum) on the masked entries.

    ``masks``: dense bool masks, or index sets (sorted flat indices) of the entries."""
    for p, m in zip(params, masks, strict=True):
        sparse = m.dtype != torch.bool
        if sparse and m.numel() == 0:
            continue
        for value in optimizer.state.get(p, {}).values():
            if torch.is_tensor(value) and value.shape == p.shape:
                if sparse:
                    value.put_(m.long(), value.new_zeros(()).expand(m.numel()))
                else:
                    value.masked_fill_(m, 0)


class ParameterIsolation:
    """EPI state over the eligible tensors of a model: EMA F, sparse mask M with ages, counters."""

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
        self.n_refresh = 0  # mask commits: refreshes and set_mask calls
        self.task: Hashable = None
        # One EMA per stream: key None for the mixed stream, the task id under per_task_ema;
        # none at all for an external mask. Stored lazily scaled (see accumulate): the true EMA
        # is beta**pending[key] * stored; ``ema`` folds the scale in before returning it.
        self._ema: dict[Hashable, list[Tensor]] = {}
        self._pending: dict[Hashable, int] = {}
        if not self.config.per_task_ema and self._tracks_importance:
            self._stream(None)
        # The mask, sparse: sorted flat indices of the isolated entries and their ages.
        self._idx: list[Tensor] = [self._empty(p) for p in self.params]
        self._age: list[Tensor] = [self._empty(p, torch.uint8) for p in self.params]
        self._first: list[Tensor] | None = None
        self._task_idx: dict[Hashable, list[Tensor]] = {}  # per_task_ema: TopP(F_s)
        self._memory_idx: list[Tensor] | None = None  # stage_memory: union of TopP(S_prev)
        # The index sets are views into one flat buffer per (device, dtype): a step converts
        # them to int64 with one kernel per buffer. (buffer, split sizes, [(param, part)]).
        self._groups: list[tuple[Tensor, list[int], list[tuple[nn.Parameter, int]]]] = []
        self._step_idx: list[tuple[nn.Parameter, Tensor]] = []  # int64 copies during a step
        self._saved: list[Tensor] = []
        self.history: list[dict[str, Any]] = []

    @property
    def _tracks_importance(self) -> bool:
        return self.config.mask_source != "external"

    def _stream(self, key: Hashable) -> list[Tensor]:
        if key not in self._ema:
            self._ema[key], self._pending[key] = self._zeros(torch.float32), 0
        return self._ema[key]

    @property
    def ema(self) -> dict[Hashable, list[Tensor]]:
        """The fp32 EMA of g*g per stream (None: the mixed stream; task ids: per_task_ema)."""
        for key in self._ema:
            self._fold(key)
        return self._ema

    @torch.no_grad()
    def _fold(self, key: Hashable) -> None:
        """Apply the pending decay beta**n to the stored EMA, so that it is the true EMA."""
        n = self._pending.get(key, 0)
        if n:
            torch._foreach_mul_(self._ema[key], self.config.ema_beta**n)
            self._pending[key] = 0

    def _zeros(self, dtype: torch.dtype) -> list[Tensor]:
        return [torch.zeros(p.shape, dtype=dtype, device=p.device) for p in self.params]

    @staticmethod
    def _empty(p: Tensor, dtype: torch.dtype | None = None) -> Tensor:
        return torch.zeros(0, dtype=dtype or _index_dtype(p.numel()), device=p.device)

    def _compact(self, indices: Sequence[Tensor]) -> list[Tensor]:
        return [
            i.to(device=p.device, dtype=_index_dtype(p.numel()))
            for i, p in zip(indices, self.params, strict=True)
        ]

    # ---- read-only views ------------------------------------------------------------------
    @property
    def indices(self) -> list[Tensor]:
        """Per eligible tensor, the sorted flat indices of its isolated entries (do not modify)."""
        return list(self._idx)

    @property
    def n_isolated(self) -> int:
        return sum(int(i.numel()) for i in self._idx)

    @property
    def mask(self) -> list[Tensor]:
        """Dense bool masks (True = isolated), built on demand from the sparse state."""
        return [indices_to_mask(i, p) for i, p in zip(self._idx, self.params, strict=True)]

    @property
    def age(self) -> list[Tensor]:
        """Dense uint8 ages in refreshes (0 = not isolated), built on demand."""
        out = []
        for i, a, p in zip(self._idx, self._age, self.params, strict=True):
            dense = torch.zeros(p.numel(), dtype=torch.uint8, device=p.device)
            dense[i.long()] = a
            out.append(dense.view(p.shape))
        return out

    @property
    def first_mask(self) -> list[Tensor] | None:
        if self._first is None:
            return None
        return [indices_to_mask(i, p) for i, p in zip(self._first, self.params, strict=True)]

    @property
    def task_masks(self) -> dict[Hashable, list[Tensor]]:
        return {
            key: [indices_to_mask(i, p) for i, p in zip(idx, self.params, strict=True)]
            for key, idx in self._task_idx.items()
        }

    @property
    def memory_mask(self) -> list[Tensor] | None:
        if self._memory_idx is None:
            return None
        return [indices_to_mask(i, p) for i, p in zip(self._memory_idx, self.params, strict=True)]

    # ---- 1) online importance -------------------------------------------------------------
    @torch.no_grad()
    def accumulate(self) -> None:
        """F <- beta F + (1 - beta) g*g from the raw .grad (call before clipping and masking).

        No bias correction: it is one scalar per tensor, cancelled by the normalisation.
        One pass over F per step instead of two: F is stored as U with F = beta**n U, so the
        decay is a scalar and the step is U += (1 - beta) beta**-(n+1) g*g (one multi-tensor
        addcmul_). The decay is folded into U at every refresh, when ``ema`` is read, and before
        beta**-n passes 2**20 (fp32 U then stays within 2**20 of F's range).
        """
        self.step += 1
        if not self._tracks_importance:
            return
        beta = self.config.ema_beta
        key = self.task if self.config.per_task_ema else None
        ema = self._stream(key)
        n = self._pending[key] + 1
        if beta == 0.0 or n * -math.log(beta) > _MAX_LOG_SCALE:
            torch._foreach_mul_(ema, beta**n)  # fold, this step's decay included
            n = 0
        self._pending[key] = n
        fs, gs = [], []
        for f, p in zip(ema, self.params, strict=True):
            if p.grad is not None:
                fs.append(f)
                gs.append(p.grad if p.grad.dtype == torch.float32 else p.grad.float())
        if fs:
            torch._foreach_addcmul_(fs, gs, gs, value=(1.0 - beta) * beta**-n)

    # ---- 2) periodic refresh --------------------------------------------------------------
    def due(self, step: int | None = None) -> bool:
        """Whether ``step`` (default: steps accumulated) refreshes the mask; never for an
        external mask."""
        if not self._tracks_importance:
            return False
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
        if not self._tracks_importance:
            raise ValueError("mask_source='external' never recomputes the mask; use set_mask()")
        self.n_refresh += 1
        if cfg.per_task_ema:
            taus = {}
            for key, ema in self.ema.items():  # folded: the true EMAs
                idx, taus[key] = self._select(ema, cfg.iso_ratio, _salt(key))
                self._task_idx[key] = self._compact(idx)
            new, tau = self._task_union(), taus.get(self.task)
        else:
            new, tau = self._select(self.ema[None], cfg.iso_ratio, 0)
            if self._memory_idx is not None:
                new = self._union_with(new, self._memory_idx)
        return self._commit(new, tau, optimizer)

    @torch.no_grad()
    def set_mask(
        self, masks: Sequence[Tensor], optimizer: torch.optim.Optimizer | None = None
    ) -> dict[str, Any]:
        """Isolate exactly ``masks`` (dense bool, one per eligible tensor, in ``names`` order).

        With ``mask_source='external'`` (e.g. CPI-FT cores) nothing ever recomputes it; with the
        other sources the next refresh replaces it. Logged in ``history`` like a refresh.
        """
        if len(masks) != len(self.params):
            raise ValueError(f"set_mask: {len(masks)} masks for {len(self.params)} tensors")
        new = []
        for name, m, p in zip(self.names, masks, self.params, strict=True):
            if m.dtype != torch.bool or m.shape != p.shape:
                raise ValueError(
                    f"set_mask: {name} needs a bool mask of shape {tuple(p.shape)}, "
                    f"got {m.dtype} {tuple(m.shape)}"
                )
            new.append(mask_to_indices(m.to(p.device)))
        self.n_refresh += 1
        return self._commit(new, None, optimizer, source="external")

    def _select(
        self, ema: list[Tensor], ratio: float, salt: int
    ) -> tuple[list[Tensor], float | None]:
        cfg = self.config
        seed = _mix(cfg.seed, self.n_refresh, salt)

        def score(i: int) -> Tensor:
            p = self.params[i]
            if cfg.mask_source == "random":
                gen = _generator(p.device, _mix(seed, i))
                return torch.rand(p.shape, generator=gen, device=p.device)
            s = normalise_scores(ema[i], cfg.norm, cfg.eps)
            # inverse: a sign check, isolating the least important entries
            return s.neg_() if cfg.mask_source == "inverse" else s

        limits = (cfg.exact_quantile_max_elements, cfg.quantile_sample_size)
        if cfg.selection == "per_layer":
            picked, tau = [], None
            for i, p in enumerate(self.params):
                one, _ = top_fraction_indices(
                    lambda _, i=i: score(i), [p.numel()], ratio, *limits, _mix(seed, i)
                )
                picked.append(one[0])
        else:
            sizes = [p.numel() for p in self.params]
            picked, tau = top_fraction_indices(score, sizes, ratio, *limits, seed)
        return [i.to(p.device) for i, p in zip(picked, self.params, strict=True)], tau

    def _union_with(self, a: Sequence[Tensor], b: Sequence[Tensor]) -> list[Tensor]:
        return [_union((x, y), p.device) for x, y, p in zip(a, b, self.params, strict=True)]

    def _task_union(self) -> list[Tensor]:
        """per_task_ema: M = union over tasks s != current task of TopP(F_s)."""
        others = [idx for key, idx in self._task_idx.items() if key != self.task]
        return [_union((idx[t] for idx in others), p.device) for t, p in enumerate(self.params)]

    def _carry(self, new: Sequence[Tensor], increment: bool) -> tuple[list[Tensor], list[Tensor]]:
        """Ages for index sets ``new``: the old age (+1 at a refresh) where an entry stays, else 1;
        and the released entries (old, not in new)."""
        ages, released = [], []
        for old, old_age, idx in zip(self._idx, self._age, new, strict=True):
            hit, pos = _member(old, idx)
            age = torch.ones(idx.shape, dtype=torch.uint8, device=idx.device)
            if old.numel() and idx.numel():
                kept = old_age[pos[hit]]
                age[hit] = kept.clamp(max=_AGE_MAX - 1) + 1 if increment else kept
            ages.append(age)
            stays, _ = _member(idx.to(old.dtype), old)
            released.append(old[~stays])
        return ages, released

    def _install(self, new: Sequence[Tensor], ages: Sequence[Tensor]) -> None:
        idx = self._compact(new)
        members: dict[tuple[torch.device, torch.dtype], list[int]] = {}
        for t, i in enumerate(idx):
            members.setdefault((i.device, i.dtype), []).append(t)
        self._idx, self._groups = list(idx), []
        for tensors in members.values():
            counts = [idx[t].numel() for t in tensors]
            flat = torch.cat([idx[t] for t in tensors])
            for t, view in zip(tensors, flat.split(counts), strict=True):
                self._idx[t] = view
            active = [(self.params[t], j) for j, t in enumerate(tensors) if counts[j]]
            if active:
                self._groups.append((flat, counts, active))
        self._age = list(ages)

    def _replace(self, new: Sequence[Tensor]) -> None:
        """Change the mask between refreshes (task switch, stage memory): ages carry over."""
        ages, _ = self._carry(new, increment=False)
        self._install(new, ages)

    def _commit(
        self,
        new: list[Tensor],
        tau: float | None,
        optimizer: torch.optim.Optimizer | None,
        source: str | None = None,
    ) -> dict[str, Any]:
        cfg = self.config
        ages, released = self._carry(new, increment=True)
        n_old, n_new = self.n_isolated, sum(int(i.numel()) for i in new)
        n_released = sum(int(r.numel()) for r in released)
        n_inter = n_old - n_released
        # protect_mode none observes only: the optimizer state is not touched either
        if cfg.moments == "reset_on_release" and n_released and cfg.protect_mode != "none":
            if optimizer is None:
                raise ValueError("moments='reset_on_release' needs the optimizer in maybe_refresh")
            reset_moments(optimizer, self.params, released)
        self._install(new, ages)
        if self._first is None and n_new > 0:
            self._first = [i.clone() for i in self._idx]
        union = n_old + n_new - n_inter
        jaccard = n_inter / union if n_old > 0 and union > 0 else None
        first = None
        if self._first is not None:
            kept = sum(
                int(_member(f, i)[0].sum()) for f, i in zip(self._first, self._idx, strict=True)
            )
            first = kept / max(sum(int(f.numel()) for f in self._first), 1)
        all_ages = torch.cat([a.cpu() for a in ages])
        hist = {
            f"{lo}-{hi}": int(((all_ages >= lo) & (all_ages <= hi)).sum()) for lo, hi in _AGE_BINS
        }
        p = cfg.iso_ratio
        stats = {
            "step": self.step,
            "refresh": self.n_refresh,
            "source": source or cfg.mask_source,
            "tau": tau,
            "n_eligible": self.n_eligible,
            "n_isolated": n_new,
            "frac_isolated": n_new / self.n_eligible,
            "jaccard_prev": jaccard,
            "churn": None if jaccard is None else 1.0 - jaccard,
            "overlap_first": first,
            "jaccard_random": p / (2.0 - p),
            "released": n_released,
            "added": n_new - n_inter,
            # Ages count refresh windows (about K steps each); mostly-old masks = static isolation.
            "age_mean": float(all_ages.float().sum()) / max(n_new, 1),
            "age_max": int(all_ages.max()) if n_new else 0,
            "age_hist": hist,
            "per_tensor_frac": {
                name: int(i.numel()) / q.numel()
                for name, i, q in zip(self.names, self._idx, self.params, strict=True)
            },
        }
        self.history.append(stats)
        return stats

    # ---- [D] extensions -------------------------------------------------------------------
    def set_task(self, task_id: Hashable) -> None:
        """Declare the task of the coming optimizer step (per_task_ema); a no-op otherwise."""
        if not self.config.per_task_ema:
            self.task = task_id
            return
        if task_id == self.task and task_id in self._ema:
            return  # the mask is already the union for this task
        self.task = task_id
        self._stream(task_id)
        if self._task_idx:
            self._replace(self._task_union())

    @torch.no_grad()
    def end_stage(self) -> int:
        """stage_memory: remember TopP_mem of the current normalised scores; returns its size.

        Memories of all finished stages are kept (a union), so the first stage stays protected in
        a three-stage sequence; the current mask is widened at once.
        """
        if not self.config.stage_memory:
            raise ValueError("end_stage() needs stage_memory=True")
        mem, _ = self._select(self.ema[None], self.config.memory_ratio, 1)
        if self._memory_idx is not None:
            mem = self._union_with(mem, self._memory_idx)
        self._memory_idx = self._compact(mem)
        self._replace(self._union_with(self._idx, mem))
        return sum(int(m.numel()) for m in mem)

    # ---- 3) protection around optimizer.step() --------------------------------------------
    @torch.no_grad()
    def protect_before_step(self) -> None:
        """final_delta/lr_scale: save the p*N isolated values; grad_zero: zero their gradient;
        none: nothing (observe only)."""
        mode = self.config.protect_mode
        self._step_idx, self._saved = [], []
        if mode == "none":
            return
        for flat, counts, active in self._groups:
            parts = flat.long().split(counts)
            self._step_idx += [(p, parts[j]) for p, j in active]
        if mode == "grad_zero":
            for p, i in self._step_idx:
                if p.grad is not None:
                    p.grad.put_(i, p.grad.new_zeros(()).expand(i.numel()))
        else:
            self._saved = [torch.take(p, i) for p, i in self._step_idx]

    @torch.no_grad()
    def restore_after_step(self) -> None:
        """final_delta: write the saved values back bit-identically (cancels AdamW's whole delta,
        weight decay included); lr_scale: keep only gamma times the delta on isolated entries."""
        if self._saved:
            if self.config.protect_mode == "lr_scale":
                gamma = self.config.lr_scale_gamma
                for (p, i), old in zip(self._step_idx, self._saved, strict=True):
                    old.add_(torch.take(p, i).sub_(old), alpha=gamma)
            for (p, i), old in zip(self._step_idx, self._saved, strict=True):
                p.put_(i, old)
        self._step_idx, self._saved = [], []

    # ---- checkpoints and accounting -------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Engine state; tensors are shared with the engine, as in ``nn.Module.state_dict``."""
        return {
            "version": _STATE_VERSION,
            "config": self.config.model_dump(),
            "names": list(self.names),
            "step": self.step,
            "n_refresh": self.n_refresh,
            "task": self.task,
            "ema": dict(self._ema),  # lazily scaled; the true EMA is beta**n times it
            "ema_pending": dict(self._pending),
            "indices": list(self._idx),
            "age": list(self._age),
            "first_indices": None if self._first is None else list(self._first),
            "task_indices": dict(self._task_idx),
            "memory_indices": None if self._memory_idx is None else list(self._memory_idx),
            "history": list(self.history),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from ``state_dict()``; version-1 (dense-mask) states are converted."""
        if list(state["names"]) != self.names:
            raise ValueError("isolation state was saved for different eligible parameters")
        version = state.get("version", 1)
        if version not in (1, _STATE_VERSION):
            raise ValueError(f"unknown isolation state version {version}")
        if version == 1:
            state = _upgrade_v1(state)

        def place(ts: list[Tensor] | None, compact: bool = True) -> list[Tensor] | None:
            if ts is None:
                return None
            out = [t.to(device=p.device, copy=True) for t, p in zip(ts, self.params, strict=True)]
            return self._compact(out) if compact else out

        self.step, self.n_refresh, self.task = state["step"], state["n_refresh"], state["task"]
        self._ema = {k: place(v, compact=False) for k, v in state["ema"].items()}
        self._pending = {k: state.get("ema_pending", {}).get(k, 0) for k in self._ema}
        self._install(place(state["indices"]), place(state["age"], compact=False))
        self._first = place(state["first_indices"])
        self._task_idx = {k: place(v) for k, v in state["task_indices"].items()}
        self._memory_idx = place(state["memory_indices"])
        self.history = list(state["history"])

    def memory_bytes(self) -> int:
        """Persistent extra bytes: EMA(s), mask indices and ages, first-mask indices, task and
        stage-memory indices. A step also holds the p*N isolated values and their int64 indices
        transiently (``step_transient_bytes``)."""
        tensors = [*self._idx, *self._age, *(self._first or []), *(self._memory_idx or [])]
        tensors += [t for ts in self._ema.values() for t in ts]
        tensors += [t for ts in self._task_idx.values() for t in ts]
        return sum(t.numel() * t.element_size() for t in tensors)

    def step_transient_bytes(self) -> int:
        """Bytes held only during a protected step: int64 indices + saved values."""
        if self.config.protect_mode == "none":
            return 0
        saved = 0 if self.config.protect_mode == "grad_zero" else 1
        per_entry = [8 + saved * p.element_size() for p in self.params]
        return sum(i.numel() * b for i, b in zip(self._idx, per_entry, strict=True))


def _upgrade_v1(state: dict[str, Any]) -> dict[str, Any]:
    """Dense version-1 state (bool masks, int16 ages) -> sparse version 2."""

    def sparse(masks: list[Tensor] | None) -> list[Tensor] | None:
        return None if masks is None else [mask_to_indices(m) for m in masks]

    indices = sparse(state["mask"])
    ages = [
        a.reshape(-1)[i].clamp(1, _AGE_MAX).to(torch.uint8)
        for a, i in zip(state["age"], indices, strict=True)
    ]
    return {
        **state,
        "indices": indices,
        "age": ages,
        "first_indices": sparse(state["first_mask"]),
        "task_indices": {k: sparse(v) for k, v in state["task_masks"].items()},
        "memory_indices": sparse(state["memory_mask"]),
    }


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
