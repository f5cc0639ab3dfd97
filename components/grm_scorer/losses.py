"""The scorer's hybrid regression-ranking loss.

    L = w_reg * mean_i Reg(s_i, q_i)
        + w_rank * mean_{(i,j): same prompt, q_i > q_j} max(0, m - (s_i - s_j))

Reg is Huber_delta (the paper's; with delta = 1 and s, q in [0, 1] it is 0.5 * MSE everywhere) or
plain MSE (the MSE-only variant). The weights are explicit because the sources disagree on which
side alpha multiplies; hybrid = (0.7, 0.3), MSE-only = (1, 0), hinge-only = (0, 1)."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

Regression = Literal["huber", "mse"]


def preference_pairs(labels: torch.Tensor, groups: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Indices (i, j) of every pair from the same group (prompt) with labels[i] > labels[j]."""
    better = (labels[:, None] > labels[None, :]) & (groups[:, None] == groups[None, :])
    i, j = better.nonzero(as_tuple=True)
    return i, j


def regression_loss(
    scores: torch.Tensor, labels: torch.Tensor, kind: Regression = "huber", delta: float = 1.0
) -> torch.Tensor:
    if kind == "mse":
        return F.mse_loss(scores, labels)
    return F.huber_loss(scores, labels, delta=delta)


def pairwise_hinge(
    scores: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor, margin: float = 0.1
) -> torch.Tensor:
    """Mean hinge over preference pairs; 0 (with a graph) when a batch has no pair."""
    i, j = preference_pairs(labels, groups)
    if i.numel() == 0:
        return scores.sum() * 0.0
    return torch.clamp(margin - (scores[i] - scores[j]), min=0.0).mean()


def hybrid_loss(
    scores: torch.Tensor,
    labels: torch.Tensor,
    groups: torch.Tensor,
    *,
    w_reg: float = 0.7,
    w_rank: float = 0.3,
    delta: float = 1.0,
    margin: float = 0.1,
    regression: Regression = "huber",
) -> torch.Tensor:
    loss = scores.new_zeros(())
    if w_reg:
        loss = loss + w_reg * regression_loss(scores, labels, regression, delta)
    if w_rank:
        loss = loss + w_rank * pairwise_hinge(scores, labels, groups, margin)
    return loss


def pairwise_accuracy(scores: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor) -> float:
    """Share of preference pairs the scores order correctly (ties count half); NaN without pairs."""
    i, j = preference_pairs(labels, groups)
    if i.numel() == 0:
        return float("nan")
    diff = scores[i] - scores[j]
    return float(((diff > 0).float() + 0.5 * (diff == 0).float()).mean())
