"""Which entries EPI isolates: the eligible tensors, per-tensor normalised importance, and the top
fraction of all scores together (``top_fraction``, the one selection entry point)."""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from components.epi_finetune.params import IsolationConfig, NormMode

# A transformer block: `model.layers.3.`, `transformer.h.0.`, `blocks.2.`, `encoder.layer.5.`.
_BLOCK_RE = re.compile(r"(^|\.)(layers|h|blocks|block|layer)\.\d+\.")


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


def normalise_scores(scores: Tensor, mode: NormMode, eps: float) -> Tensor:
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


def seeded_generator(device: torch.device, seed: int) -> torch.Generator:
    """A generator seeded from ``seed`` alone, so every DDP rank draws the same numbers."""
    return torch.Generator(device=device).manual_seed(seed % (2**63))


def mix_seeds(*keys: int) -> int:
    """One seed from several keys (run seed, refresh index, tensor index), the same in every
    process (unlike ``hash``)."""
    seed = 0
    for k in keys:
        seed = (seed * 1_000_003 + k) % (2**63)
    return seed


def top_fraction(
    score: Callable[[int], Tensor],
    sizes: Sequence[int],
    ratio: float,
    limits: IsolationConfig,
    seed: int = 0,
) -> tuple[Tensor, float]:
    """Sorted int64 indices into the concatenation of all tensors of the top ``ratio`` of all
    scores, and the threshold tau.

    ``score(i)`` computes tensor i's scores: once per tensor on the exact path (one flat fp32
    copy of all scores is alive), twice on the sampled path (no copy is kept). Up to
    ``limits.exact_quantile_max_elements`` elements, ``topk`` picks exactly round(ratio * N)
    entries (ties broken arbitrarily); above, entries >= a threshold taken from a subsample of
    ``limits.quantile_sample_size`` scores seeded with ``seed`` (> it, when ties would double the
    set).
    """
    n_total = sum(sizes)
    k = round(ratio * n_total)
    if k == 0:
        return torch.zeros(0, dtype=torch.long, device=score(0).device), math.inf
    offsets = [0, *itertools.accumulate(sizes)]
    if n_total > limits.exact_quantile_max_elements:
        tau = _sampled_threshold(score, sizes, ratio, limits.quantile_sample_size, seed)
        picked, ties, device = [], [], None
        for i in range(len(sizes)):
            s = score(i).reshape(-1)
            device = device or s.device
            idx = (s >= tau).nonzero().squeeze(1)
            ties.append((s[idx] == tau).to(device))
            picked.append(idx.to(device) + offsets[i])
        flat, tied = torch.cat(picked), torch.cat(ties)
        return (flat[~tied] if flat.numel() > 2 * k else flat), tau  # many ties (zeros) at tau
    first = score(0)
    flat = torch.empty(n_total, dtype=torch.float32, device=first.device)
    for i in range(len(sizes)):
        flat[offsets[i] : offsets[i + 1]].copy_((first if i == 0 else score(i)).reshape(-1))
    values, idx = _topk(flat, k)
    del flat
    return idx.sort().values, values.min().item()


def _topk(flat: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """``flat.topk(k)``, 2-4x faster for k << N: only entries above a threshold taken from a
    strided subsample (1.5x the needed quantile) go into the topk. Exact: with fewer than k
    candidates it falls back to the plain topk."""
    n = flat.numel()
    stride = n // 65_536
    if stride >= 4 and 3 * k < n:
        sample = flat[::stride]
        q = min(sample.numel(), math.ceil(1.5 * k * sample.numel() / n))
        t0 = sample.kthvalue(sample.numel() - q + 1).values
        candidates = (flat >= t0).nonzero().squeeze(1)
        if candidates.numel() >= k:
            values, j = flat[candidates].topk(k, sorted=False)
            return values, candidates[j]
    return flat.topk(k, sorted=False)


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
            n, (n_i,), generator=seeded_generator(s.device, mix_seeds(seed, i)), device=s.device
        )
        parts.append(s.detach().flatten()[idx].float().to(parts[0].device if parts else s.device))
    flat = torch.cat(parts)
    k = max(1, round(ratio * flat.numel()))
    return flat.kthvalue(flat.numel() - k + 1).values.item()
