"""Training data and training of the scorer.

Paths: K CoT paths per question sampled from the policy (what the scorer must rank at test time),
plus `synthetic_paths` gold paths with one slip per question, so every prompt has preference
pairs even where the policy's paths all agree. Labels: the graded path quality of
`reasoning.path_quality` (checkable steps). Pairs: all paths of one prompt with q_i > q_j.

The loop is a few lines on purpose: the head trains on cached features of a frozen encoder, in
batches of whole prompts (the hinge needs a prompt's paths together), which Trainer's per-example
batching does not provide."""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from components.grm_scorer import reasoning
from components.grm_scorer.consensus import extract_answer, majority_vote
from components.grm_scorer.losses import hybrid_loss, pairwise_accuracy
from components.grm_scorer.params import ScorerParams
from components.grm_scorer.scorer import Scorer


@dataclass
class PathSet:
    """Rows of (question, path) with graded labels, grouped by question."""

    questions: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    labels: list[float] = field(default_factory=list)
    groups: list[int] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    golds: list[str] = field(default_factory=list)
    from_policy: list[bool] = field(default_factory=list)

    def add(self, question, path, label, group, answer, gold, from_policy) -> None:
        for name, value in zip(
            ("questions", "paths", "labels", "groups", "answers", "golds", "from_policy"),
            (question, path, label, group, answer, gold, from_policy),
            strict=True,
        ):
            getattr(self, name).append(value)

    def subset(self, groups: set[int]) -> PathSet:
        out = PathSet()
        for i, g in enumerate(self.groups):
            if g in groups:
                out.add(*(getattr(self, n)[i] for n in _FIELDS))
        return out


_FIELDS = ("questions", "paths", "labels", "groups", "answers", "golds", "from_policy")


def build_path_set(
    problems: Sequence[reasoning.Problem],
    policy_paths: Sequence[Sequence[str]],
    policy_answers: Sequence[Sequence[str]],
    synthetic_paths: int,
    seed: int,
) -> PathSet:
    rng = random.Random(seed)
    data = PathSet()
    for group, (problem, paths, answers) in enumerate(
        zip(problems, policy_paths, policy_answers, strict=True)
    ):
        gold = problem.gold.lower()
        for path, answer in zip(paths, answers, strict=True):
            data.add(
                problem.question,
                path,
                reasoning.path_quality(problem, path),
                group,
                answer,
                gold,
                True,
            )
        for _ in range(synthetic_paths if problem.k > 1 else 0):
            path = reasoning.slipped_path(problem, rng)
            answer = extract_answer(path)
            data.add(
                problem.question,
                path,
                reasoning.path_quality(problem, path),
                group,
                answer,
                gold,
                False,
            )
    return data


def split_groups(data: PathSet, val_fraction: float, seed: int) -> tuple[PathSet, PathSet]:
    groups = sorted(set(data.groups))
    random.Random(seed).shuffle(groups)
    n_val = max(1, round(val_fraction * len(groups)))
    return data.subset(set(groups[n_val:])), data.subset(set(groups[:n_val]))


def selection_metrics(data: PathSet, scores: np.ndarray) -> dict[str, float]:
    """On the policy's paths only (what inference sees): best-of-K accuracy of the scorer's pick,
    of majority voting and of an oracle; pairwise ranking accuracy; Spearman with the labels."""
    from scipy.stats import spearmanr

    by_group: dict[int, list[int]] = {}
    for i, (g, own) in enumerate(zip(data.groups, data.from_policy, strict=True)):
        if own:
            by_group.setdefault(g, []).append(i)
    picks, votes, oracle = [], [], []
    for rows in by_group.values():
        gold = data.golds[rows[0]]
        best = max(rows, key=lambda i: scores[i])
        picks.append(data.answers[best] == gold)
        votes.append(majority_vote([data.answers[i] for i in rows]) == gold)
        oracle.append(any(data.answers[i] == gold for i in rows))
    own = [i for i, flag in enumerate(data.from_policy) if flag]
    labels = torch.tensor([data.labels[i] for i in own])
    groups = torch.tensor([data.groups[i] for i in own])
    own_scores = torch.tensor(scores[own])
    rho = (
        spearmanr(own_scores.numpy(), labels.numpy()).statistic
        if len(set(labels.tolist())) > 1
        else math.nan
    )
    n = max(len(picks), 1)
    return {
        "best_of_k.scorer": sum(picks) / n,
        "best_of_k.vote": sum(votes) / n,
        "best_of_k.oracle": sum(oracle) / n,
        "pairwise_accuracy": pairwise_accuracy(own_scores, labels, groups),
        "pairwise_accuracy.all_paths": pairwise_accuracy(
            torch.tensor(scores), torch.tensor(data.labels), torch.tensor(data.groups)
        ),
        "spearman": float(rho),
    }


def _features(scorer: Scorer, data: PathSet, batch_size: int = 256) -> torch.Tensor:
    with torch.no_grad():
        scorer.eval()
        return torch.cat(
            [
                scorer.features(data.questions[i : i + batch_size], data.paths[i : i + batch_size])
                for i in range(0, len(data.paths), batch_size)
            ]
        )


def fit_scorer(
    scorer: Scorer, train: PathSet, val: PathSet, params: ScorerParams, seed: int
) -> tuple[dict[str, float], list[dict[str, float]]]:
    """Train with the hybrid loss; keep the epoch with the best validation pairwise accuracy (on
    all validation paths: the policy's alone may have too few pairs); stop after `patience`
    epochs without improvement. Returns the best validation metrics and the history."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    frozen = not scorer.trainable_encoder
    train_x = _features(scorer, train) if frozen else None
    val_x = _features(scorer, val) if frozen else None
    labels, groups = torch.tensor(train.labels), torch.tensor(train.groups)
    rows_of: dict[int, list[int]] = {}
    for i, g in enumerate(train.groups):
        rows_of.setdefault(g, []).append(i)
    optimizer = torch.optim.AdamW(
        [p for p in scorer.parameters() if p.requires_grad],
        lr=params.learning_rate,
        weight_decay=params.weight_decay,
    )
    loss_args = params.loss.model_dump()
    best, best_state, history, stale = -1.0, None, [], 0
    for epoch in range(params.epochs):
        scorer.train()
        order = list(rows_of)
        rng.shuffle(order)
        losses = []
        for lo in range(0, len(order), params.batch_prompts):
            idx = [i for g in order[lo : lo + params.batch_prompts] for i in rows_of[g]]
            if frozen:
                scores = scorer.head(train_x[idx])
            else:
                scores = scorer([train.questions[i] for i in idx], [train.paths[i] for i in idx])
            loss = hybrid_loss(scores, labels[idx], groups[idx], **loss_args)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        scorer.eval()
        with torch.no_grad():
            val_scores = scorer.head(val_x) if frozen else _score_rows(scorer, val)
        metrics = selection_metrics(val, val_scores.numpy())
        history.append({"epoch": epoch + 1, "train_loss": float(np.mean(losses)), **metrics})
        key = metrics["pairwise_accuracy.all_paths"]
        if key > best:
            best, best_state, stale = key, copy.deepcopy(scorer.state_dict()), 0
        else:
            stale += 1
            if stale >= params.patience:
                break
    if best_state is not None:
        scorer.load_state_dict(best_state)
    best_row = max(history, key=lambda row: row["pairwise_accuracy.all_paths"])
    return {f"val.{k}": v for k, v in best_row.items()}, history


def _score_rows(scorer: Scorer, data: PathSet) -> torch.Tensor:
    scores, _ = scorer.score(data.questions, data.paths)
    return torch.from_numpy(scores)
