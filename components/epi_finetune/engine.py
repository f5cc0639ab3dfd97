"""The EPI engine: online importance, a revocable top-p mask with drift statistics, checkpoints.

The engine keeps, per eligible tensor, an fp32 EMA of squared raw gradients (``[D]`` options: fed
every s-th gradient, stored in bf16; see ``accumulate``); every K optimizer
steps it normalises the EMA within each tensor and isolates the global top-p% (selection.py);
``IsolatingOptimizer`` (optimizer.py) keeps those entries fixed across ``optimizer.step()`` until a
later refresh releases them. Usable from any torch loop::

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
B, about 4 + 9p: 4.45 B at p = 5%, 4.09 B at p = 1%, at most 5 B up to p = 11% (2 B less with
``ema_dtype='bfloat16'``). The dense bool
mask is never stored: ``mask`` builds it on demand (diagnostics, tests). A step holds, transiently,
the int64 indices and the values of the p*N isolated entries (12p B per parameter in fp32).
``per_task_ema`` adds 4 B + 8p B per task, ``stage_memory`` 8 B per remembered entry;
``mask_source='external'`` keeps no EMA at all.

Cost per step: one multi-tensor ``addcmul_`` over the eligible tensors (the EMA is stored lazily
scaled, so its decay is a scalar) and a gather + scatter of the p*N isolated values; a refresh
(every K steps) normalises, selects and diffs index sets with a fixed number of kernels.

Under DDP the gradients are already all-reduced when ``step()`` runs, so every rank computes the
same EMA and the same mask; the random parts (random masks, threshold subsamples) use generators
seeded from (seed, refresh index), identical on every rank. No collective is needed. An external
mask (``set_mask``) must be the same on every rank (compute it from the synchronised weights).
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from components.epi_finetune.index_sets import (
    index_dtype,
    indices_to_mask,
    mask_to_indices,
    member,
    put_at,
    union,
)
from components.epi_finetune.params import IsolationConfig
from components.epi_finetune.selection import (
    eligible_parameters,
    mix_seeds,
    normalise_scores,
    seeded_generator,
    top_fraction,
)

_AGE_MAX = torch.iinfo(torch.uint8).max
_AGE_BINS = ((1, 1), (2, 3), (4, 7), (8, 15), (16, _AGE_MAX))
_STATE_VERSION = 2
_MAX_LOG_SCALE = 20 * math.log(2)  # lazily scaled EMA: fold before beta**-n exceeds 2**20
_EMA_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}  # bf16: fp32's exponent range


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
                    put_at(value, m.to(p.device, torch.long), value.new_zeros(()).expand(m.numel()))
                else:
                    value.masked_fill_(m, 0)


class ParameterIsolation:
    """EPI state over the eligible tensors of a model: EMA F, sparse mask M with ages, counters.

    Index sets are handled in one "global" index space, the concatenation of all eligible tensors
    (int64, on the first tensor's device), so a refresh costs a fixed number of kernels whatever
    the number of tensors. The current mask is kept as per-tensor int32 views of one flat buffer
    (``indices``), the form the step needs.
    """

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
        self.sizes = [p.numel() for p in self.params]
        self.n_eligible = sum(self.sizes)
        self._device = self.params[0].device  # of the global index space
        self._offsets = torch.tensor([0, *itertools.accumulate(self.sizes)], device=self._device)
        # one flat int32 buffer for all tensors' indices when they share a device and fit int32
        self._flat_ok = all(p.device == self._device and n < 2**31 for p, n in self._pairs())
        self._local_dtype = index_dtype(max(self.sizes))
        self.step = 0  # optimizer steps seen by accumulate()
        self.n_refresh = 0  # mask commits: refreshes and set_mask calls
        self.task: Hashable = None
        # One EMA per stream: key None for the mixed stream, the task id under per_task_ema;
        # none at all for an external mask. Stored lazily scaled (see accumulate): the true EMA
        # is beta**pending[key] * stored; ``ema`` folds the scale in before returning it.
        self._ema: dict[Hashable, list[Tensor]] = {}
        self._pending: dict[Hashable, int] = {}
        self._skipped: dict[Hashable, int] = {}  # ema_every: the stream's steps since its update
        if not self.config.per_task_ema and self._tracks_importance:
            self._stream(None)
        # The mask: per-tensor sorted local indices (int32 views), ages aligned with their
        # concatenation (uint8), and the step's groups: (flat buffer, split sizes, [(param, j)]).
        self._idx: list[Tensor] = []
        self._counts: list[int] = []
        self._age = torch.zeros(0, dtype=torch.uint8, device=self._device)
        self._groups: list[tuple[Tensor, list[int], list[tuple[nn.Parameter, int]]]] = []
        self._flat = torch.zeros(0, dtype=torch.int32, device=self._device)
        empty = torch.zeros(0, dtype=torch.long, device=self._device)
        self._install(empty, self._age)
        # the first mask, for the overlap statistic: concatenated local indices and counts
        self._first: tuple[Tensor, list[int]] | None = None
        self._task_sets: dict[Hashable, Tensor] = {}  # per_task_ema: TopP(F_s), global int64
        self._memory_set: Tensor | None = None  # stage_memory: union of TopP(S_prev), global
        self.history: list[dict[str, Any]] = []

    def _pairs(self) -> Iterable[tuple[nn.Parameter, int]]:
        return zip(self.params, self.sizes, strict=True)

    @property
    def _tracks_importance(self) -> bool:
        return self.config.mask_source != "external"

    def _stream(self, key: Hashable) -> list[Tensor]:
        if key not in self._ema:
            self._ema[key] = self._zeros(_EMA_DTYPES[self.config.ema_dtype])
            self._pending[key], self._skipped[key] = 0, 0
        return self._ema[key]

    @property
    def ema(self) -> dict[Hashable, list[Tensor]]:
        """The EMA of g*g per stream (None: the mixed stream; task ids: per_task_ema), in
        ``ema_dtype``, as of its last update."""
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

    # ---- index sets: local (per tensor) <-> global (concatenation) -----------------------
    def _globalise(self, local: Sequence[Tensor]) -> Tensor:
        counts = torch.tensor([i.numel() for i in local], device=self._device)
        flat = torch.cat([i.to(self._device, torch.long) for i in local])
        return flat + torch.repeat_interleave(self._offsets[:-1], counts, output_size=flat.numel())

    def _from_local(self, local: Tensor, counts: list[int]) -> Tensor:
        """Concatenated local indices (with their per-tensor counts) -> global indices."""
        counts_t = torch.tensor(counts, device=self._device)
        shift = torch.repeat_interleave(self._offsets[:-1], counts_t, output_size=local.numel())
        return local.long() + shift

    def _current_global(self) -> Tensor:
        if self._flat_ok:  # the flat buffer is the concatenation already
            return self._from_local(self._flat, self._counts)
        return self._globalise(self._idx)

    def _localise(self, g: Tensor) -> tuple[Tensor, list[int]]:
        """Global sorted indices -> local indices (concatenated, int64) and counts per tensor."""
        counts = torch.searchsorted(g, self._offsets).diff().tolist()
        shift = torch.repeat_interleave(
            self._offsets[:-1], torch.tensor(counts, device=self._device), output_size=g.numel()
        )
        return g - shift, counts

    def _dense(self, g: Tensor) -> list[Tensor]:
        local, counts = self._localise(g)
        return [
            indices_to_mask(i, p) for i, p in zip(local.split(counts), self.params, strict=True)
        ]

    # ---- read-only views ------------------------------------------------------------------
    @property
    def indices(self) -> list[Tensor]:
        """Per eligible tensor, the sorted flat indices of its isolated entries (do not modify)."""
        return list(self._idx)

    def isolated_entries(self) -> list[tuple[nn.Parameter, Tensor]]:
        """(tensor, int64 flat indices of its isolated entries) for each tensor with any: the
        entries a protected step keeps fixed (fresh int64 copies, alive only during the step)."""
        entries = []
        for flat, counts, active in self._groups:
            parts = flat.long().split(counts)
            entries += [(p, parts[j]) for p, j in active]
        return entries

    @property
    def n_isolated(self) -> int:
        return sum(self._counts)

    @property
    def mask(self) -> list[Tensor]:
        """Dense bool masks (True = isolated), built on demand from the sparse state."""
        return [indices_to_mask(i, p) for i, p in zip(self._idx, self.params, strict=True)]

    @property
    def age(self) -> list[Tensor]:
        """Dense uint8 ages in refreshes (0 = not isolated), built on demand."""
        out = []
        for i, a, p in zip(self._idx, self._age.split(self._counts), self.params, strict=True):
            dense = torch.zeros(p.numel(), dtype=torch.uint8, device=p.device)
            dense[i.long()] = a.to(p.device)
            out.append(dense.view(p.shape))
        return out

    @property
    def first_mask(self) -> list[Tensor] | None:
        if self._first is None:
            return None
        local, counts = self._first
        return [
            indices_to_mask(i, p) for i, p in zip(local.split(counts), self.params, strict=True)
        ]

    @property
    def task_masks(self) -> dict[Hashable, list[Tensor]]:
        return {key: self._dense(g) for key, g in self._task_sets.items()}

    @property
    def memory_mask(self) -> list[Tensor] | None:
        return None if self._memory_set is None else self._dense(self._memory_set)

    # ---- 1) online importance -------------------------------------------------------------
    @torch.no_grad()
    def accumulate(self) -> None:
        """F <- beta F + (1 - beta) g*g from the raw .grad (call before clipping and masking).

        No bias correction: it is one scalar per tensor, cancelled by the normalisation.
        One pass over F per step instead of two: F is stored as U with F = beta**n U, so the
        decay is a scalar and the step is U += (1 - beta) beta**-(n+1) g*g (one multi-tensor
        addcmul_). The decay is folded into U at every refresh, when ``ema`` is read, and before
        beta**-n passes 2**20 (fp32 U then stays within 2**20 of F's range).

        ``ema_every`` = s > 1 [D]: only every s-th step of the stream (and every refresh step)
        updates F, with the gradient standing for the g steps since the last update:
        F <- beta**g F + (1 - beta**g) g*g (a constant g*g still gives F = g*g).
        """
        self.step += 1
        if not self._tracks_importance:
            return
        key = self.task if self.config.per_task_ema else None
        ema = self._stream(key)
        gap = self._skipped[key] + 1  # the stream's steps since its last update, this one included
        if gap < self.config.ema_every and not self.due():
            self._skipped[key] = gap
            return
        self._skipped[key] = 0
        beta = self.config.ema_beta
        n = self._pending[key] + gap
        if beta == 0.0 or n * -math.log(beta) > _MAX_LOG_SCALE:
            torch._foreach_mul_(ema, beta**n)  # fold, this update's decay included
            n = 0
        self._pending[key] = n
        fs, gs = [], []
        for f, p in zip(ema, self.params, strict=True):
            if p.grad is not None:
                fs.append(f)
                gs.append(p.grad if p.grad.dtype == torch.float32 else p.grad.float())
        if fs:
            torch._foreach_addcmul_(fs, gs, gs, value=(1.0 - beta**gap) * beta**-n)

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
                self._task_sets[key], taus[key] = self._select(ema, cfg.iso_ratio, _salt(key))
            new, tau = self._task_union(), taus.get(self.task)
        else:
            new, tau = self._select(self.ema[None], cfg.iso_ratio, 0)
            if self._memory_set is not None:
                new = union((new, self._memory_set), self._device)
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
        for name, m, p in zip(self.names, masks, self.params, strict=True):
            if m.dtype != torch.bool or m.shape != p.shape:
                raise ValueError(
                    f"set_mask: {name} needs a bool mask of shape {tuple(p.shape)}, "
                    f"got {m.dtype} {tuple(m.shape)}"
                )
        self.n_refresh += 1
        new = self._globalise([mask_to_indices(m) for m in masks])
        return self._commit(new, None, optimizer, source="external")

    def _select(self, ema: list[Tensor], ratio: float, salt: int) -> tuple[Tensor, float | None]:
        """Global indices of the top ``ratio`` (of each tensor, for selection='per_layer')."""
        cfg = self.config
        seed = mix_seeds(cfg.seed, self.n_refresh, salt)

        def score(i: int) -> Tensor:
            p = self.params[i]
            if cfg.mask_source == "random":
                gen = seeded_generator(p.device, mix_seeds(seed, i))
                return torch.rand(p.shape, generator=gen, device=p.device)
            s = normalise_scores(ema[i], cfg.norm, cfg.eps)
            # inverse: a sign check, isolating the least important entries
            return s.neg_() if cfg.mask_source == "inverse" else s

        if cfg.selection == "per_layer":
            picked = [
                top_fraction(lambda _, i=i: score(i), [n], ratio, cfg, mix_seeds(seed, i))[0]
                for i, n in enumerate(self.sizes)
            ]
            return self._globalise(picked), None
        picked, tau = top_fraction(score, self.sizes, ratio, cfg, seed)
        return picked.to(self._device), tau

    def _task_union(self) -> Tensor:
        """per_task_ema: M = union over tasks s != current task of TopP(F_s)."""
        others = (g for key, g in self._task_sets.items() if key != self.task)
        return union(others, self._device)

    def _carry(self, new: Tensor, increment: bool) -> tuple[Tensor, Tensor, Tensor]:
        """For global index set ``new``: ages (the old age, +1 at a refresh, where an entry
        stays, else 1), the released entries (old, not new) and the old set."""
        old = self._current_global()
        hit, pos = member(old, new)
        ages = torch.ones(new.shape, dtype=torch.uint8, device=self._device)
        if old.numel() and new.numel():
            kept = self._age[pos[hit]]
            ages[hit] = kept.clamp(max=_AGE_MAX - 1) + 1 if increment else kept
        stays, _ = member(new, old)
        return ages, old[~stays], old

    def _install(self, new: Tensor, ages: Tensor) -> None:
        """Make global index set ``new`` (sorted) the mask, with ``ages``."""
        local, counts = self._localise(new)
        self._counts, self._age = counts, ages
        if self._flat_ok:
            flat = self._flat = local.to(torch.int32)
            self._idx = list(flat.split(counts))
            active = [(p, j) for j, p in enumerate(self.params) if counts[j]]
            self._groups = [(flat, counts, active)] if active else []
            return
        # several devices (or a tensor of >= 2**31 entries): one buffer per (device, dtype)
        parts = [
            i.to(p.device, index_dtype(n))
            for i, (p, n) in zip(local.split(counts), self._pairs(), strict=True)
        ]
        members: dict[tuple[torch.device, torch.dtype], list[int]] = {}
        for t, i in enumerate(parts):
            members.setdefault((i.device, i.dtype), []).append(t)
        self._idx, self._groups = parts, []
        for tensors in members.values():
            sub = [counts[t] for t in tensors]
            flat = torch.cat([parts[t] for t in tensors])
            for t, view in zip(tensors, flat.split(sub), strict=True):
                self._idx[t] = view
            active = [(self.params[t], j) for j, t in enumerate(tensors) if sub[j]]
            if active:
                self._groups.append((flat, sub, active))

    def _replace(self, new: Tensor) -> None:
        """Change the mask between refreshes (task switch, stage memory): ages carry over."""
        ages, _, _ = self._carry(new, increment=False)
        self._install(new, ages)

    def _commit(
        self,
        new: Tensor,
        tau: float | None,
        optimizer: torch.optim.Optimizer | None,
        source: str | None = None,
    ) -> dict[str, Any]:
        cfg = self.config
        ages, released, old = self._carry(new, increment=True)
        n_old, n_new, n_released = old.numel(), new.numel(), released.numel()
        n_inter = n_old - n_released
        # protect_mode none observes only: the optimizer state is not touched either
        if cfg.moments == "reset_on_release" and n_released and cfg.protect_mode != "none":
            if optimizer is None:
                raise ValueError("moments='reset_on_release' needs the optimizer in maybe_refresh")
            local, counts = self._localise(released)
            reset_moments(optimizer, self.params, local.split(counts))
        self._install(new, ages)
        if self._first is None and n_new > 0:
            local, counts = self._localise(new)
            self._first = (local.to(self._local_dtype), counts)
        union = n_old + n_new - n_inter
        jaccard = n_inter / union if n_old > 0 and union > 0 else None
        first = None
        if self._first is not None:
            first_set = self._from_local(*self._first)
            first = int(member(new, first_set)[0].sum()) / max(first_set.numel(), 1)
        hist = {f"{lo}-{hi}": int(((ages >= lo) & (ages <= hi)).sum()) for lo, hi in _AGE_BINS}
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
            # chance levels of two random p-masks: their Jaccard, and the share of one in the other
            "jaccard_random": p / (2.0 - p),
            "overlap_random": p,
            "released": n_released,
            "added": n_new - n_inter,
            # Ages count refresh windows (about K steps each); mostly-old masks = static isolation.
            "age_mean": float(ages.float().sum()) / max(n_new, 1),
            "age_max": int(ages.max()) if n_new else 0,
            "age_hist": hist,
            "per_tensor_frac": {
                name: c / n for name, c, n in zip(self.names, self._counts, self.sizes, strict=True)
            },
        }
        self.history.append(stats)
        return stats

    # ---- extensions: per-task EMA, stage memory ------------------------------------------
    def set_task(self, task_id: Hashable) -> None:
        """Declare the task of the coming optimizer step (per_task_ema); a no-op otherwise."""
        if not self.config.per_task_ema:
            self.task = task_id
            return
        if task_id == self.task and task_id in self._ema:
            return  # the mask is already the union for this task
        self.task = task_id
        self._stream(task_id)
        if self._task_sets:
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
        if self._memory_set is not None:
            mem = union((mem, self._memory_set), self._device)
        self._memory_set = mem
        self._replace(union((self._current_global(), mem), self._device))
        return mem.numel()

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
            "ema_skipped": dict(self._skipped),
            "indices": list(self._idx),  # per tensor, local
            "age": self._age,  # aligned with the concatenated indices
            "first_indices": None
            if self._first is None
            else list(self._first[0].split(self._first[1])),
            "task_sets": dict(self._task_sets),  # global
            "memory_set": self._memory_set,
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

        def here(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.to(self._device, copy=True)

        self.step, self.n_refresh, self.task = state["step"], state["n_refresh"], state["task"]
        dtype = _EMA_DTYPES[self.config.ema_dtype]
        self._ema = {
            k: [t.to(p.device, dtype, copy=True) for t, p in zip(v, self.params, strict=True)]
            for k, v in state["ema"].items()
        }
        self._pending = {k: state.get("ema_pending", {}).get(k, 0) for k in self._ema}
        self._skipped = {k: state.get("ema_skipped", {}).get(k, 0) for k in self._ema}
        self._install(self._globalise(state["indices"]), here(state["age"]))
        self._first = None
        if state["first_indices"] is not None:
            local, counts = self._localise(self._globalise(state["first_indices"]))
            self._first = (local.to(self._local_dtype), counts)
        self._task_sets = {k: here(v) for k, v in state["task_sets"].items()}
        self._memory_set = here(state["memory_set"])
        self.history = list(state["history"])

    def memory_bytes(self) -> int:
        """Persistent extra bytes: EMA(s), mask indices and ages, first-mask indices, task and
        stage-memory sets. A step also holds the p*N isolated values and their int64 indices
        transiently (``step_transient_bytes``)."""
        tensors = [*self._idx, self._age, *(self._first[:1] if self._first else [])]
        tensors += [*self._task_sets.values()] + (
            [self._memory_set] if self._memory_set is not None else []
        )
        tensors += [t for ts in self._ema.values() for t in ts]
        return sum(t.numel() * t.element_size() for t in tensors)

    def step_transient_bytes(self) -> int:
        """Bytes held only during a protected step: int64 indices + saved values."""
        if self.config.protect_mode == "none":
            return 0
        saved = 0 if self.config.protect_mode == "grad_zero" else 1
        return sum(
            c * (8 + saved * p.element_size())
            for c, p in zip(self._counts, self.params, strict=True)
        )


def _upgrade_v1(state: dict[str, Any]) -> dict[str, Any]:
    """Dense version-1 state (bool masks, int16 ages) -> the sparse version-2 layout."""
    masks = state["mask"]
    sizes = [m.numel() for m in masks]
    offsets = [0, *itertools.accumulate(sizes)]

    def to_global(ms: list[Tensor] | None) -> Tensor | None:
        if ms is None:
            return None
        return torch.cat([mask_to_indices(m).cpu() + o for m, o in zip(ms, offsets, strict=False)])

    indices = [mask_to_indices(m) for m in masks]
    ages = torch.cat(
        [
            a.reshape(-1)[i].clamp(1, _AGE_MAX).to(torch.uint8).cpu()
            for a, i in zip(state["age"], indices, strict=True)
        ]
    )
    first = state["first_mask"]
    return {
        **state,
        "indices": indices,
        "age": ages,
        "first_indices": None if first is None else [mask_to_indices(m) for m in first],
        "task_sets": {k: to_global(v) for k, v in state["task_masks"].items()},
        "memory_set": to_global(state["memory_mask"]),
    }


def _salt(key: Hashable) -> int:
    # crc32, not hash(): str hashes differ between processes, and ranks must agree.
    return zlib.crc32(repr(key).encode())
