"""The RL loop shared by RLHB and its baselines, and RLHB's discriminator with bootstrapping
(spec §Algorithm, step 2):

    a. sample prompts with target behaviours (b* with share `target_b_star_share`, else a logged
       behaviour); b. n rollouts each; c. reward = the scorer's output (RLHB: D's logit), clipped,
       minus beta * KL to the SFT policy, RLOO update; d. (RLHB only) the top-rho share of this
       round's rollouts by reward join the real pool, then D steps on real (logs + bootstrap)
       against fakes (this round's rollouts and behaviour-shuffled real triplets).

The baselines' scorers are fixed during RL: `FixedReward` wraps RLHBC's shaped classifier reward
or pairwise RLHF's reward model. Every iteration appends one row to the history (the curves)."""

from __future__ import annotations

import copy
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from components.rlhb import policy as pol
from components.rlhb.params import RlhbParams
from components.rlhb.scorers import Scorer, discriminator_loss, encode, scorer_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Triplet:
    query: str
    response: str
    behaviour: str  # the behaviour text


class DiscriminatorReward:
    """D(q, r, b) as the reward, trained against the generator (RLHB)."""

    def __init__(
        self,
        scorer: Scorer,
        tokenizer: PreTrainedTokenizerBase,
        pool: Sequence[Triplet],
        held_out: Sequence[Triplet],
        params: RlhbParams,
        rng: random.Random,
    ) -> None:
        self.scorer, self.tokenizer, self.params, self.rng = scorer, tokenizer, params, rng
        self.real = list(pool)  # D_on, grown by bootstrapping
        self.logged_behaviours = [t.behaviour for t in pool]
        self.held_out = list(held_out)
        self.held_out_fakes = [shuffled(t, self.logged_behaviours, rng) for t in held_out]
        self.optimizer = torch.optim.AdamW(scorer.parameters(), lr=params.scorer.learning_rate)
        self.bootstrapped = 0

    def logits(self, triplets: Sequence[Triplet]) -> torch.Tensor:
        texts = [scorer_text(t.query, t.response, t.behaviour) for t in triplets]
        batch = encode(self.tokenizer, texts, self.params.scorer.max_length)
        return self.scorer(**batch).squeeze(-1)

    @torch.no_grad()
    def score(self, triplets: Sequence[Triplet]) -> torch.Tensor:
        self.scorer.eval()
        return self.logits(triplets)

    def step(self, real: Sequence[Triplet], fake: Sequence[Triplet]) -> float:
        self.scorer.train()
        labels = torch.tensor([1] * len(real) + [0] * len(fake))
        loss = discriminator_loss(self.logits([*real, *fake]), labels, self.params.label_smoothing)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def warm_up(self) -> list[float]:
        """Step 0: real logs against the same logs with another sample's behaviour."""
        size = self.params.scorer.batch_size
        losses = []
        for _ in range(self.params.scorer.warmup_steps):
            real = self.rng.sample(self.real, size)
            fake = [
                shuffled(t, self.logged_behaviours, self.rng)
                for t in self.rng.sample(self.real, size)
            ]
            losses.append(self.step(real, fake))
        return losses

    def update(self, generated: Sequence[Triplet], rewards: torch.Tensor) -> dict[str, float]:
        """Bootstrap the top-rho of `generated` into the real pool, then D's steps."""
        keep = bootstrap_indices(rewards, self.params.bootstrap_ratio)
        self.real.extend(generated[i] for i in keep)
        self.bootstrapped += len(keep)
        size = len(generated)
        n_generated = round(self.params.fake_generated_share * size)
        loss = float("nan")
        for _ in range(self.params.discriminator_steps):
            fake = [*self.rng.sample(list(generated), n_generated)]
            fake += [
                shuffled(t, self.logged_behaviours, self.rng)
                for t in self.rng.sample(self.real, size - n_generated)
            ]
            loss = self.step(self.rng.sample(self.real, size), fake)
        return {"d_loss": loss, "bootstrapped": float(self.bootstrapped)}

    def held_out_accuracy(self) -> float:
        """D's accuracy on held-out real triplets against their behaviour-shuffled copies."""
        real = self.score(self.held_out) > 0
        fake = self.score(self.held_out_fakes) <= 0
        return float(torch.cat([real, fake]).float().mean())


class FixedReward:
    """A scorer that RL does not train (RLHBC's classifier, pairwise RLHF's reward model)."""

    def __init__(self, reward_of: Callable[[Sequence[Triplet]], torch.Tensor]) -> None:
        self.reward_of = reward_of

    def score(self, triplets: Sequence[Triplet]) -> torch.Tensor:
        return self.reward_of(triplets)


def shuffled(triplet: Triplet, behaviours: Sequence[str], rng: random.Random) -> Triplet:
    """The triplet with another logged behaviour (a different text, when one exists)."""
    for _ in range(10):
        other = rng.choice(behaviours)
        if other != triplet.behaviour:
            break
    return Triplet(triplet.query, triplet.response, other)


def bootstrap_indices(rewards: torch.Tensor, ratio: float) -> list[int]:
    """The indices of the top round(ratio * n) rewards (ties: the earlier index first)."""
    count = round(ratio * len(rewards))
    order = sorted(range(len(rewards)), key=lambda i: (-float(rewards[i]), i))
    return sorted(order[:count])


@dataclass(frozen=True)
class Task:
    query: str
    behaviour: str  # the target behaviour text (what D or the history is conditioned on)
    is_b_star: bool


def sample_tasks(
    queries: Sequence[str],
    behaviours: Sequence[str],
    b_star: str,
    params: RlhbParams,
    rng: random.Random,
    b_star_share: float,
) -> list[Task]:
    tasks = []
    for _ in range(params.prompts_per_iteration):
        is_b_star = rng.random() < b_star_share
        tasks.append(
            Task(rng.choice(queries), b_star if is_b_star else rng.choice(behaviours), is_b_star)
        )
    return tasks


def train_rl(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    reward: DiscriminatorReward | FixedReward,
    queries: Sequence[str],
    behaviours: Sequence[str],
    b_star: str,
    params: RlhbParams,
    conditioning: bool,
    b_star_share: float,
    monitor: Callable[[list[str], list[str]], float] | None = None,
    name: str = "rlhb",
) -> list[dict[str, float]]:
    """RL of `model` in place against `reward`; the history of every iteration. `monitor(queries,
    responses)` (the simulator's hidden utility, when there is one) is only logged."""
    rng = random.Random(params.seed)
    torch.manual_seed(params.seed)
    reference = copy.deepcopy(model).eval().requires_grad_(False)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=params.learning_rate
    )
    n, history = params.rollouts, []
    for iteration in range(1, params.iterations + 1):
        tasks = sample_tasks(queries, behaviours, b_star, params, rng, b_star_share)
        prompts = [
            pol.generator_prompt(t.query, t.behaviour if conditioning else None) for t in tasks
        ]
        rollouts = pol.sample(
            model, tokenizer, prompts, n, params.max_new_tokens, params.temperature
        )
        generated = [
            Triplet(tasks[i // n].query, text, tasks[i // n].behaviour)
            for i, text in enumerate(rollouts.texts)
        ]
        scores = reward.score(generated)
        model.train()
        logprobs = pol.token_logprobs(model, rollouts, tokenizer.pad_token_id)
        with torch.no_grad():
            ref_logprobs = pol.token_logprobs(reference, rollouts, tokenizer.pad_token_id)
        returns, kl = pol.returns(
            scores, logprobs, ref_logprobs, params.kl_coef, params.reward_clip
        )
        advantages = pol.rloo_advantages(returns.view(-1, n))
        loss = pol.rloo_loss(logprobs, advantages)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        row = {
            "iteration": float(iteration),
            "reward": float(scores.clamp(-params.reward_clip, params.reward_clip).mean()),
            "return": float(returns.mean()),
            "return_std": float(returns.std()),
            "kl": float(kl.mean()),
            "length": float(rollouts.completion_mask.sum(dim=1).float().mean()),
        }
        if isinstance(reward, DiscriminatorReward):
            row["d_prob_generated"] = float(torch.sigmoid(scores).mean())
            row |= reward.update(generated, scores)
            if iteration % 10 == 0 or iteration == params.iterations:
                row["d_accuracy"] = reward.held_out_accuracy()
        if monitor is not None:
            star = [i for i, t in enumerate(generated) if tasks[i // n].is_b_star]
            if star:
                row["true_score_b_star"] = monitor(
                    [generated[i].query for i in star], [generated[i].response for i in star]
                )
        history.append(row)
        if iteration % 25 == 0 or iteration == params.iterations:
            log.info("%s iteration %d/%d: %s", name, iteration, params.iterations, _brief(row))
    return history


def _brief(row: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in row.items() if k != "iteration" and np.isfinite(v))
