"""Cost accounting for every route: generated tokens, forward passes, wall time and FLOPs per item.

FLOPs are analytic (Kaplan et al. 2020): a forward pass over one token at context length n costs
2N + 2 * n_layer * n * d_model, with N the non-embedding parameters. With a KV cache each token
runs through the model once, at a context equal to its position, so a generation with p prompt
tokens and g new tokens processes p + g - 1 tokens (the last sampled token is never fed back).
A bidirectional encoder (the scorer) attends over all n tokens from each of its n positions."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class FlopsModel:
    non_embedding_params: int
    n_layers: int
    d_model: int

    @classmethod
    def of(cls, model: torch.nn.Module) -> FlopsModel:
        config = model.config
        embeddings = sum(
            m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Embedding)
        )
        total = sum(p.numel() for p in model.parameters())
        return cls(total - embeddings, config.num_hidden_layers, config.hidden_size)

    def decoder_flops(self, prompt_tokens: int, new_tokens: int) -> float:
        processed = prompt_tokens + max(new_tokens - 1, 0)
        # sum over positions 1..processed of the attention term
        attention = 2 * self.n_layers * self.d_model * processed * (processed + 1) / 2
        return 2 * self.non_embedding_params * processed + attention

    def encoder_flops(self, tokens: int) -> float:
        return 2 * self.non_embedding_params * tokens + 2 * self.n_layers * self.d_model * tokens**2


@dataclass(frozen=True)
class Sample:
    """One decoding of one item, with its share of the cost."""

    answer: str
    tokens: int  # generated tokens (up to and including EOS)
    flops: float
    wall_s: float
    score: float = math.nan  # the scorer's s_k (CoT paths)
    score_flops: float = 0.0  # what scoring this path cost
    score_wall_s: float = 0.0

    @property
    def forward_passes(self) -> int:
        """Decoder passes this sample needs on its own: one per generated token."""
        return self.tokens


@dataclass(frozen=True)
class Outcome:
    """What a route answered for one item and what that cost."""

    answer: str
    correct: bool
    route: str  # "direct" or "cot"
    tokens: int
    forward_passes: int
    flops: float
    wall_s: float


def spend(samples: Iterable[Sample], scored: bool = False) -> dict[str, float]:
    """Summed cost of decoding (and optionally scoring) some samples."""
    total = {"tokens": 0.0, "forward_passes": 0.0, "flops": 0.0, "wall_s": 0.0}
    for s in samples:
        total["tokens"] += s.tokens
        total["forward_passes"] += s.forward_passes + (1 if scored else 0)
        total["flops"] += s.flops + (s.score_flops if scored else 0.0)
        total["wall_s"] += s.wall_s + (s.score_wall_s if scored else 0.0)
    return total


def apportion_wall(wall_s: float, tokens: Sequence[int]) -> list[float]:
    """Split a batched phase's wall time over its rows in proportion to their generated tokens
    (a batched call has no per-row clock; longer rows keep the batch decoding longer)."""
    total = sum(tokens)
    if total == 0:
        return [wall_s / max(len(tokens), 1)] * len(tokens)
    return [wall_s * t / total for t in tokens]


def finite(metrics: dict[str, float]) -> dict[str, float]:
    """Drop undefined values (e.g. a rank correlation of constant labels on tiny data): KFP
    metrics, MLflow and DVC all want numbers."""
    return {key: value for key, value in metrics.items() if not math.isnan(value)}


def summarize(outcomes: Sequence[Outcome]) -> dict[str, float]:
    """Per-item means of a route's accuracy and costs, plus its CoT trigger rate."""
    n = len(outcomes)
    if n == 0:
        raise ValueError("no outcomes to summarise")
    return {
        "accuracy": sum(o.correct for o in outcomes) / n,
        "tokens_per_item": sum(o.tokens for o in outcomes) / n,
        "forward_passes_per_item": sum(o.forward_passes for o in outcomes) / n,
        "gflops_per_item": sum(o.flops for o in outcomes) / n / 1e9,
        "wall_ms_per_item": 1000 * sum(o.wall_s for o in outcomes) / n,
        "trigger_rate": sum(o.route == "cot" for o in outcomes) / n,
    }
