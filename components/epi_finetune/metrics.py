"""Continual-learning metrics of the EPI study, as pure functions.

Definitions where the paper gives none (our choices):
- forgetting of a task = best accuracy at any earlier evaluation − final accuracy (≥ 0);
- BWT = mean over all stages but the last of (final accuracy − accuracy right after that stage)
  on that stage's tasks (negative = forgetting);
- gradient conflict of task t = share of |g_t| on coordinates where g_t and the summed gradient
  of the other tasks point in opposite directions (0 = none, 0.5 = unrelated, 1 = opposed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor


def forgetting(history: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Per task: max over earlier evaluations minus the final one, from a list of {task: acc}."""
    if len(history) < 2:
        return {task: 0.0 for task in (history[-1] if history else {})}
    final = history[-1]
    return {
        task: max(0.0, max(h[task] for h in history[:-1] if task in h) - final[task])
        for task in final
        if any(task in h for h in history[:-1])
    }


def backward_transfer(
    after_stage: Sequence[Mapping[str, float]], stages: Sequence[Sequence[str]]
) -> float:
    """BWT from accuracies measured at the end of each stage (`after_stage[k]` = {task: acc})."""
    final = after_stage[-1]
    deltas = [
        final[task] - after_stage[k][task]
        for k, tasks in enumerate(stages[:-1])
        for task in tasks
        if task in after_stage[k] and task in final
    ]
    return sum(deltas) / len(deltas) if deltas else 0.0


def conflict_score(
    task_grad: Sequence[Tensor],
    other_grad: Sequence[Tensor],
    exclude: Sequence[Tensor] | None = None,
) -> float:
    """|g_t|-weighted share of coordinates where g_t opposes the other tasks' gradient.

    `exclude` (bool masks) drops coordinates, e.g. isolated ones, to score what still trains."""
    opposed, total = torch.zeros(()), torch.zeros(())
    for i, (g, h) in enumerate(zip(task_grad, other_grad, strict=True)):
        weight = g.abs()
        if exclude is not None:
            weight = weight.masked_fill(exclude[i], 0)
        opposed += (weight * ((g * h) < 0)).sum()
        total += weight.sum()
    return float(opposed / total) if total > 0 else 0.0
