"""The small student and its distillation loop: one target rule per student (GOVERN or a baseline),
then optionally the supervised stage on the labeled split.

    rule          target of the label-free stage (per sample, from the cached teacher logits)
    govern        losses.majority_target (the vote against the current student)
    mean, median  the teachers' mean / median
    best_single   the teacher with the best dev AUC (labels on dev only)
    confidence    losses.confidence_weighted
    aekd          per batch, teachers weighed by losses.min_norm_weights of their loss gradients
    labels        no teachers: BCE on the labeled split only

A plain loop (AdamW, linear warm-up then linear decay, as the spec says): the student is an MLP and
AE-KD needs each teacher's gradient per batch, which the loop takes directly."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from components.govern import losses
from components.govern.params import GovernParams


def build_student(dim: int, hidden: int) -> nn.Sequential:
    """dim -> hidden -> 1 (the spec's 32-64-1 MLP): one logit per sample, shape (batch,). Plain
    torch modules only, so the registered model loads without this project installed."""
    return nn.Sequential(
        nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, 1), nn.Flatten(start_dim=0)
    )


@dataclass(frozen=True)
class Batch:
    features: torch.Tensor
    teachers: torch.Tensor
    labels: torch.Tensor


def label_free_loss(
    rule: str, params: GovernParams, best_teacher: int
) -> Callable[[nn.Module, Batch], torch.Tensor]:
    """The loss of one batch under `rule` (every rule but aekd: a target, then the stage-1 loss)."""

    def target(batch: Batch, student: torch.Tensor) -> torch.Tensor:
        t = batch.teachers
        if rule == "govern":
            return losses.majority_target(
                t, student, params.eps, params.target_mode, params.tie_mode
            )
        if rule == "mean":
            return t.mean(dim=1)
        if rule == "median":
            return losses.median(t)
        if rule == "best_single":
            return t[:, best_teacher]
        if rule == "confidence":
            return losses.confidence_weighted(t)
        raise ValueError(f"unknown rule {rule!r}")

    def loss(model: nn.Module, batch: Batch) -> torch.Tensor:
        student = model(batch.features)
        if rule == "labels":
            return nn.functional.binary_cross_entropy_with_logits(student, batch.labels.float())
        if rule == "aekd":
            return aekd_loss(student, batch, params)
        return losses.distillation_loss(
            student, target(batch, student), params.loss, params.temperature
        )

    return loss


def aekd_loss(student: torch.Tensor, batch: Batch, params: GovernParams) -> torch.Tensor:
    """sum_k w_k L_k with w the min-norm point of the teachers' gradient hull (AE-KD). The
    gradients are taken with respect to the student's logits on the batch, not its weights (the
    MGDA-UB bound of Sener and Koltun, 2018): for the MSE loss, teacher k's is 2 (s - t_k) / B."""
    per_teacher = [
        losses.distillation_loss(student, batch.teachers[:, k], params.loss, params.temperature)
        for k in range(batch.teachers.shape[1])
    ]
    logit = student.detach().requires_grad_()
    grads = torch.stack(
        [
            torch.autograd.grad(
                losses.distillation_loss(logit, t, params.loss, params.temperature), logit
            )[0]
            for t in batch.teachers.T
        ]
    )
    weights = losses.min_norm_weights(grads @ grads.T, params.aekd_cap)
    return sum(w * part for w, part in zip(weights.tolist(), per_teacher, strict=True))


def supervised_stage_loss(
    params: GovernParams, rule: Literal["govern", "mean_kd"]
) -> Callable[[nn.Module, Batch], torch.Tensor]:
    """The supervised stage: GOVERN's (losses.supervised_loss) or BCE + KD to the teachers' mean."""

    def loss(model: nn.Module, batch: Batch) -> torch.Tensor:
        student = model(batch.features)
        if rule == "govern":
            return losses.supervised_loss(
                student,
                batch.teachers,
                batch.labels,
                params.label_smoothing,
                params.lambda_label,
                params.lambda_kd,
            )
        bce = nn.functional.binary_cross_entropy_with_logits(student, batch.labels.float())
        kd = nn.functional.mse_loss(student, batch.teachers.mean(dim=1))
        return params.lambda_label * bce + params.lambda_kd * kd

    return loss


def fit(
    model: nn.Module,
    data: Batch,
    loss_of: Callable[[nn.Module, Batch], torch.Tensor],
    params: GovernParams,
    epochs: int,
    seed: int,
) -> list[dict[str, float]]:
    """Train `model` on `data` in shuffled minibatches; returns the loss per epoch."""
    generator = torch.Generator().manual_seed(seed)
    n = len(data.features)
    steps = epochs * max(1, -(-n // params.batch_size))
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=params.learning_rate, weight_decay=params.weight_decay
    )
    warmup = max(1, int(params.warmup_ratio * steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: min((step + 1) / warmup, max(0.0, (steps - step) / max(1, steps - warmup))),
    )
    history = []
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(n, generator=generator)
        total = 0.0
        for start in range(0, n, params.batch_size):
            index = order[start : start + params.batch_size]
            batch = Batch(data.features[index], data.teachers[index], data.labels[index])
            loss = loss_of(model, batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(index)
        history.append({"epoch": float(epoch + 1), "loss": total / n})
    model.eval()
    return history


def as_batch(features: np.ndarray, teachers: np.ndarray, labels: np.ndarray) -> Batch:
    return Batch(
        torch.as_tensor(features, dtype=torch.float32),
        torch.as_tensor(teachers, dtype=torch.float32),
        torch.as_tensor(labels, dtype=torch.int64),
    )


def predict(model: nn.Module, features: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.as_tensor(features, dtype=torch.float32)).numpy()
