"""E-GRM's gated inference as it runs on new questions (what the registered model does):

1. M direct samples of every question (one batched call, decode.direct_samples);
2. consensus of their answers; consensus >= tau answers with the majority, route `direct`;
3. only the questions below tau get K CoT paths (a second batched call over those alone);
4. the scorer scores those paths and the best one answers, route `cot`.

Nothing is generated that the route does not use, so the tokens and wall time measured here are
the method's real cost. The baselines it is compared with (bench/egrm_gated.py) run the same way:
always-direct is one greedy decoding, always-CoT K paths and a majority vote.

Row seeds depend on (seed, question, phase, sample index) only (sampling.py), so the CoT paths of
a triggered question are the very paths always-CoT draws for it, as in the evaluate stage's
replay of every route from one shared decoding (gating.py)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import PreTrainedTokenizerBase

from components.common.models import load_causal_lm
from components.grm_scorer.consensus import Consensus, consensus, route
from components.grm_scorer.cost import Sample
from components.grm_scorer.decode import cot_samples, direct_samples
from components.grm_scorer.params import GatingParams
from components.grm_scorer.scorer import Scorer, load_scorer


@dataclass(frozen=True)
class Answer:
    """What the gated GRM answered for one question, and what it generated to get there."""

    answer: str
    route: str  # "direct" or "cot"
    consensus: float  # share of the most common of the M direct answers
    reward: float  # the chosen path's score on the cot route; the consensus on the direct route
    tokens: int  # generated tokens: M probes plus, on the cot route, K paths


@dataclass(frozen=True)
class Batch:
    """Answers to a list of questions with the wall time of the whole call."""

    answers: list[Answer]
    wall_s: float

    @property
    def tokens(self) -> int:
        return sum(a.tokens for a in self.answers)


def direct_answer(probe: Consensus, direct: Sequence[Sample]) -> Answer:
    return Answer(probe.answer, "direct", probe.share, probe.share, sum(s.tokens for s in direct))


def scored_answer(
    probe: Consensus, direct: Sequence[Sample], paths: Sequence[Sample], scores: Sequence[float]
) -> Answer:
    """The best-scored path's answer (the first among equal scores, as gating.best_scored)."""
    best = max(range(len(paths)), key=lambda j: scores[j])
    tokens = sum(s.tokens for s in direct) + sum(s.tokens for s in paths)
    return Answer(paths[best].answer, "cot", probe.share, float(scores[best]), tokens)


@dataclass
class GatedGrm:
    """The policy, the scorer and the gate (tau and the sampling schedule in `gating`)."""

    model: torch.nn.Module
    tokenizer: PreTrainedTokenizerBase
    scorer: Scorer
    gating: GatingParams
    seed: int

    @classmethod
    def load(cls, policy_dir: Path, scorer_dir: Path, gating: GatingParams, seed: int) -> GatedGrm:
        model, tokenizer = load_causal_lm(policy_dir)
        return cls(model, tokenizer, load_scorer(scorer_dir), gating, seed)

    @property
    def cot_suffix(self) -> str:
        # the scorer was trained on paths that followed this suffix: it travels with the scorer
        return self.scorer.config.cot_suffix

    def _cot(self, questions: Sequence[str]) -> tuple[list[list[Sample]], list[str]]:
        """K CoT paths per question, and their texts (question-major)."""
        paths, generations = cot_samples(
            self.model, self.tokenizer, questions, self.gating, self.seed, self.cot_suffix
        )
        return paths, generations.texts

    def answer(self, questions: Sequence[str]) -> Batch:
        """E-GRM: probe, gate, CoT and scorer only below tau."""
        start = time.perf_counter()
        direct, _ = direct_samples(self.model, self.tokenizer, questions, self.gating, self.seed)
        probes = [consensus([s.answer for s in row]) for row in direct]
        hard = [i for i, p in enumerate(probes) if route(p.share, self.gating.tau) == "cot"]
        # every question first gets its direct answer; those below tau are then replaced
        answers = [direct_answer(p, row) for p, row in zip(probes, direct, strict=True)]
        if hard:
            k = self.gating.k
            paths, texts = self._cot([questions[i] for i in hard])
            scores, _ = self.scorer.score([questions[i] for i in hard for _ in range(k)], texts)
            for n, i in enumerate(hard):
                answers[i] = scored_answer(
                    probes[i], direct[i], paths[n], scores[n * k : (n + 1) * k].tolist()
                )
        return Batch(answers, time.perf_counter() - start)

    def always_direct(self, questions: Sequence[str]) -> Batch:
        """One greedy direct decoding per question (the first sample of the schedule, T = 0)."""
        start = time.perf_counter()
        greedy = self.gating.model_copy(update={"m": 1})
        direct, _ = direct_samples(self.model, self.tokenizer, questions, greedy, self.seed)
        answers = [Answer(row[0].answer, "direct", 1.0, 1.0, row[0].tokens) for row in direct]
        return Batch(answers, time.perf_counter() - start)

    def always_cot_vote(self, questions: Sequence[str]) -> Batch:
        """K CoT paths on every question and a majority vote (self-consistency)."""
        start = time.perf_counter()
        answers = []
        for row in self._cot(questions)[0]:
            # the vote is the most common answer: consensus computes it with its share
            votes = consensus([s.answer for s in row])
            tokens = sum(s.tokens for s in row)
            answers.append(Answer(votes.answer, "cot", votes.share, votes.share, tokens))
        return Batch(answers, time.perf_counter() - start)


def batch_metrics(batch: Batch, golds: Sequence[str], prefix: str) -> dict[str, float]:
    """Accuracy against the normalised gold answers, and the measured cost, per question."""
    n = len(batch.answers)
    correct = sum(a.answer == g for a, g in zip(batch.answers, golds, strict=True))
    return {
        f"{prefix}.accuracy": correct / n,
        f"{prefix}.tokens_per_item": batch.tokens / n,
        f"{prefix}.wall_ms_per_item": 1000 * batch.wall_s / n,
        f"{prefix}.trigger_rate": sum(a.route == "cot" for a in batch.answers) / n,
    }
