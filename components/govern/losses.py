"""GOVERN's distillation targets and losses (Zhou et al., EMNLP 2024 Industry), and the baselines'.

Each teacher k gives a scalar logit t_k per sample; the student gives s. The label-free rule:

    o_k = sign(t_k - s)              (0 where |t_k - s| <= eps: the dead zone)
    O   = sign(sum_k o_k)            the majority orientation
    A   = {k : o_k = O}              the teachers that push the student the majority's way
    target = mean_{k in A} t_k       (target_mode "mean_majority")
           | t_{argmin_{k in A} |t_k - s|}   ("nearest_majority")
           | median_k t_k            ("median_all", the static control)
    tie (O = 0): mean_k t_k          (tie_mode "mean_all") or s itself ("skip": no pull)

When every teacher is on one side, A is all of them and the target is the mean (mean-KD). For one
sample and fixed teachers, mean_majority drives the student to the median teacher (the spec's
fixed point); nearest_majority stops at the first majority teacher it reaches, which is the median
only when the student starts next to it (tests/unit/test_govern_losses.py shows both). The vote
is taken on the detached student, so the target carries no gradient. The supervised stage swaps the
majority for the label: O_y = sign(logit(y~) - s) with y~ the label smoothed to (smoothing,
1 - smoothing); the target is the mean of the teachers with o_k = O_y, or logit(y~) when none, and
the loss adds the labels' BCE: lambda_lab * BCE(s, y) + lambda_kd * (s - target)^2.

Baseline targets: the mean, the median (the mean of the two middle values for even K), one
teacher, and confidence-weighted (weights |t_k|, label-free). AE-KD weighs teachers per batch in
the student's gradient space (`min_norm_weights`)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from components.govern.params import StageOneLoss, TargetMode, TieMode


def orientations(teachers: torch.Tensor, student: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """o_k in {-1, 0, 1} per (sample, teacher): teachers (B, K), student (B,)."""
    gap = teachers - student.detach()[:, None]
    return torch.where(gap.abs() <= eps, torch.zeros_like(gap), torch.sign(gap))


def median(teachers: torch.Tensor) -> torch.Tensor:
    """The per-sample median of (B, K); even K takes the mean of the two middle values."""
    return teachers.quantile(0.5, dim=1)


def majority_target(
    teachers: torch.Tensor,
    student: torch.Tensor,
    eps: float = 0.0,
    target_mode: TargetMode = "mean_majority",
    tie_mode: TieMode = "mean_all",
) -> torch.Tensor:
    """GOVERN's label-free target per sample (B,), without gradient."""
    with torch.no_grad():
        if target_mode == "median_all":
            return median(teachers)
        votes = orientations(teachers, student, eps)
        majority = torch.sign(votes.sum(dim=1))
        in_majority = (votes == majority[:, None]) & (majority[:, None] != 0)
        if target_mode == "mean_majority":
            chosen = (teachers * in_majority).sum(dim=1) / in_majority.sum(dim=1).clamp(min=1)
        else:
            distance = (teachers - student[:, None]).abs().masked_fill(~in_majority, torch.inf)
            chosen = teachers.gather(1, distance.argmin(dim=1, keepdim=True)).squeeze(1)
        tie = student.detach() if tie_mode == "skip" else teachers.mean(dim=1)
        return torch.where(majority == 0, tie, chosen)


def label_agreeing_target(
    teachers: torch.Tensor, student: torch.Tensor, labels: torch.Tensor, smoothing: float = 0.05
) -> torch.Tensor:
    """The supervised stage's target (B,): the mean of the teachers that push the student the way
    the (smoothed) label does, or the smoothed label's logit when none does."""
    with torch.no_grad():
        smoothed = labels.float() * (1 - 2 * smoothing) + smoothing
        label_logit = torch.logit(smoothed)
        push = torch.sign(label_logit - student)
        agree = orientations(teachers, student) == push[:, None]
        count = agree.sum(dim=1)
        mean_agreeing = (teachers * agree).sum(dim=1) / count.clamp(min=1)
        return torch.where(count > 0, mean_agreeing, label_logit)


def confidence_weighted(teachers: torch.Tensor) -> torch.Tensor:
    """sum_k |t_k| t_k / sum_k |t_k| per sample (the mean where every teacher says 0)."""
    weights = teachers.abs()
    total = weights.sum(dim=1)
    weighted = (weights * teachers).sum(dim=1) / total.clamp(min=1e-12)
    return torch.where(total > 0, weighted, teachers.mean(dim=1))


def distillation_loss(
    student: torch.Tensor,
    target: torch.Tensor,
    loss: StageOneLoss = "mse",
    temperature: float = 1.0,
) -> torch.Tensor:
    """mean (s - target)^2, or BCE(sigmoid(s), sigmoid(target / T))."""
    if loss == "mse":
        return F.mse_loss(student, target)
    return F.binary_cross_entropy_with_logits(student, torch.sigmoid(target / temperature))


def supervised_loss(
    student: torch.Tensor,
    teachers: torch.Tensor,
    labels: torch.Tensor,
    smoothing: float = 0.05,
    lambda_label: float = 1.0,
    lambda_kd: float = 1.0,
) -> torch.Tensor:
    """lambda_lab * BCE(s, y) + lambda_kd * mean (s - label_agreeing_target)^2."""
    target = label_agreeing_target(teachers, student, labels, smoothing)
    bce = F.binary_cross_entropy_with_logits(student, labels.float())
    return lambda_label * bce + lambda_kd * F.mse_loss(student, target)


def capped_simplex_projection(values: np.ndarray, cap: float) -> np.ndarray:
    """The Euclidean projection of `values` (K,) onto {w : sum w = 1, 0 <= w_k <= cap}: the w =
    clip(values - tau, 0, cap) that sums to 1. Without a cap (cap >= 1) tau comes from the sorted
    values (Duchi et al., 2008); with one, by bisection. NumPy: K is a handful, and this runs in
    every AE-KD step."""
    values = np.asarray(values, dtype=np.float64)
    if cap * len(values) < 1:
        raise ValueError(f"cap {cap} x {len(values)} teachers cannot sum to 1")
    if cap >= 1:
        ordered = np.sort(values)[::-1]
        shifts = (np.cumsum(ordered) - 1) / np.arange(1, len(values) + 1)
        tau = shifts[np.nonzero(ordered > shifts)[0][-1]]
        return np.maximum(values - tau, 0)
    low, high = values.min() - 1, values.max()
    for _ in range(60):
        tau = (low + high) / 2
        if np.clip(values - tau, 0, cap).sum() > 1:
            low = tau
        else:
            high = tau
    return np.clip(values - (low + high) / 2, 0, cap)


def min_norm_weights(gram: torch.Tensor, cap: float = 1.0, steps: int = 100) -> torch.Tensor:
    """AE-KD's teacher weights: argmin_w w^T G w over the capped simplex (G the Gram matrix of the
    per-teacher loss gradients), by projected gradient descent from uniform weights."""
    g = gram.detach().double().cpu().numpy()
    k = len(g)
    weights = np.full(k, 1.0 / k)
    lr = 1.0 / (2 * max(np.trace(g), 1e-12))  # 1 / (2 lambda_max) at most: a descent step
    for _ in range(steps):
        weights = capped_simplex_projection(weights - lr * 2 * g @ weights, cap)
    return torch.as_tensor(weights, dtype=gram.dtype)
