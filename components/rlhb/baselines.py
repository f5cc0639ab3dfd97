"""The baselines' rewards, both learned from the same logs as RLHB and fixed during RL:

- RLHBC (spec): a classifier with one head of N levels per metric on (q, r); its reward is the
  reward shaping (likes - dislikes) / (views + clicks + 1) of the expected counts (each level's
  centre mapped back through expm1);
- pairwise RLHF: a Bradley-Terry reward model on the behaviour-derived pairs (rlhb_data's
  preferences.jsonl, the project's preference format).

Both are divided by their std over the logged responses (ours: a fixed scorer's scale is
arbitrary, while RLOO's step and the KL term are not), so that every arm's reward has about unit
spread on the logs, like D's logit."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from components.rlhb import behaviour as bh
from components.rlhb.adversarial import Triplet
from components.rlhb.params import RlhbParams
from components.rlhb.scorers import (
    bradley_terry_loss,
    build_scorer,
    encode,
    level_loss,
    scorer_text,
)

RewardOf = Callable[[Sequence[Triplet]], torch.Tensor]


def _train(
    model: torch.nn.Module, loss_of: Callable[[random.Random], torch.Tensor], params: RlhbParams
) -> list[float]:
    rng = random.Random(params.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=params.scorer.learning_rate)
    model.train()
    losses = []
    for _ in range(params.scorer.warmup_steps):
        loss = loss_of(rng)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    return losses


def behaviour_classifier(
    tokenizer: PreTrainedTokenizerBase,
    logs: Sequence[dict],
    binning: dict[str, list[float]],
    params: RlhbParams,
) -> tuple[RewardOf, list[float]]:
    """RLHBC's shaped reward (unnormalised) and the classifier's training losses."""
    metrics, bins = list(binning), len(next(iter(binning.values()))) - 1
    model = build_scorer(tokenizer, params.scorer, len(metrics) * bins)
    size, max_length = params.scorer.batch_size, params.scorer.max_length

    def loss_of(rng: random.Random) -> torch.Tensor:
        batch = rng.sample(list(logs), size)
        inputs = encode(
            tokenizer, [scorer_text(r["query"], r["response"]) for r in batch], max_length
        )
        targets = torch.tensor([[r["levels"][m] for m in metrics] for r in batch])
        return level_loss(model(**inputs), targets, bins)

    losses = _train(model, loss_of, params)
    model.eval()

    @torch.no_grad()
    def reward_of(triplets: Sequence[Triplet]) -> torch.Tensor:
        inputs = encode(tokenizer, [scorer_text(t.query, t.response) for t in triplets], max_length)
        probabilities = model(**inputs).view(len(triplets), len(metrics), bins).softmax(-1).numpy()
        counts = bh.expected_counts(
            {m: probabilities[:, k] for k, m in enumerate(metrics)}, binning
        )
        return torch.as_tensor(bh.shaped_reward(counts), dtype=torch.float32)

    return reward_of, losses


def pairwise_reward_model(
    tokenizer: PreTrainedTokenizerBase, pairs: Sequence[dict], params: RlhbParams
) -> tuple[RewardOf, list[float]]:
    """Pairwise RLHF's reward model (unnormalised) and its training losses."""
    model = build_scorer(tokenizer, params.scorer, 1)
    size, max_length = params.scorer.batch_size, params.scorer.max_length

    def loss_of(rng: random.Random) -> torch.Tensor:
        batch = rng.sample(list(pairs), min(size, len(pairs)))
        texts = [
            scorer_text(p["prompt"], p[side]) for side in ("chosen", "rejected") for p in batch
        ]
        rewards = model(**encode(tokenizer, texts, max_length)).squeeze(-1)
        return bradley_terry_loss(rewards[: len(batch)], rewards[len(batch) :])

    losses = _train(model, loss_of, params)
    model.eval()

    @torch.no_grad()
    def reward_of(triplets: Sequence[Triplet]) -> torch.Tensor:
        texts = [scorer_text(t.query, t.response) for t in triplets]
        return model(**encode(tokenizer, texts, max_length)).squeeze(-1)

    return reward_of, losses


def normalised(reward_of: RewardOf, logged: Sequence[Triplet]) -> RewardOf:
    """`reward_of` divided by its sample std over `logged` (in batches of 256)."""
    values = torch.cat([reward_of(logged[i : i + 256]) for i in range(0, len(logged), 256)])
    scale = float(np.std(values.numpy(), ddof=1)) or 1.0
    return lambda triplets: reward_of(triplets) / scale
