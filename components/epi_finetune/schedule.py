"""Training schedules as an explicit sample order, consumed by Trainer's sequential sampler.

One plan serves every method: a mixed run is one stage holding all tasks; a sequential or
multi-stage run is a list of stages (groups of tasks) trained one after the other, with the
optimizer steps split evenly between them or in proportion to their records. Knowing the stage
(and, for `per_task_ema`, the task) of every optimizer step lets callbacks act at stage
boundaries."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from torch.utils.data import Dataset

from components.epi_finetune.params import StageSteps


@dataclass(frozen=True)
class TrainingPlan:
    order: list[int]  # record index of every sample slot, steps * samples_per_step of them
    stage_of_step: list[int]  # 0-based optimizer step -> stage index
    task_of_step: list[str | None]  # the single task of a step, when batches are task-pure
    stages: list[tuple[str, ...]]  # the tasks of each stage

    def stage_ends(self) -> list[int]:
        """The 1-based global step at which each stage finishes."""
        ends = [
            i + 1
            for i in range(len(self.stage_of_step) - 1)
            if self.stage_of_step[i] != self.stage_of_step[i + 1]
        ]
        return ends + [len(self.stage_of_step)]


def _stream(indices: Sequence[int], rng: random.Random) -> Iterator[int]:
    """Endless reshuffled passes over `indices`."""
    while True:
        yield from rng.sample(list(indices), len(indices))


def split_steps(steps: int, sizes: Sequence[int], split: StageSteps) -> list[int]:
    """Optimizer steps per stage: `even` (the last stage takes the remainder) or `proportional`
    to the stages' record counts (largest remainder, at least one step each), so that a record
    is seen about as often as in a mixed run of the same length."""
    if split == "even":
        share = steps // len(sizes)
        return [share] * (len(sizes) - 1) + [steps - share * (len(sizes) - 1)]
    if steps < len(sizes):
        raise ValueError(f"{steps} steps cannot give each of {len(sizes)} stages one step")
    total = sum(sizes)
    exact = [1 + (steps - len(sizes)) * n / total for n in sizes]
    counts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(sizes)), key=lambda i: counts[i] - exact[i])
    for i in by_remainder[: steps - sum(counts)]:
        counts[i] += 1
    return counts


def build_plan(
    records: Sequence[dict[str, Any]],
    stages: Sequence[Sequence[str]],
    steps: int,
    samples_per_step: int,
    seed: int,
    task_pure_batches: bool = False,
    stage_steps: StageSteps = "even",
) -> TrainingPlan:
    rng = random.Random(seed)
    by_task: dict[str, list[int]] = {}
    for index, record in enumerate(records):
        by_task.setdefault(record["task"], []).append(index)
    stages = [tuple(t for t in stage if t in by_task) for stage in stages]
    stages = [stage for stage in stages if stage]
    if not stages:
        raise ValueError("no training records in any stage")
    order: list[int] = []
    stage_of_step: list[int] = []
    task_of_step: list[str | None] = []
    sizes = [sum(len(by_task[t]) for t in stage) for stage in stages]
    for stage_index, (tasks, n_steps) in enumerate(
        zip(stages, split_steps(steps, sizes, stage_steps), strict=True)
    ):
        if task_pure_batches:
            streams = {t: _stream(by_task[t], rng) for t in tasks}
            weights = [len(by_task[t]) for t in tasks]
            for _ in range(n_steps):
                task = rng.choices(tasks, weights)[0]
                order.extend(next(streams[task]) for _ in range(samples_per_step))
                task_of_step.append(task)
        else:
            stream = _stream([i for t in tasks for i in by_task[t]], rng)
            order.extend(next(stream) for _ in range(n_steps * samples_per_step))
            task_of_step.extend([tasks[0] if len(tasks) == 1 else None] * n_steps)
        stage_of_step.extend([stage_index] * n_steps)
    return TrainingPlan(order, stage_of_step, task_of_step, stages)


def stages_from_records(records: Sequence[dict[str, Any]]) -> list[tuple[str, ...]]:
    """The records' own `stage` field: tasks grouped by stage, stages in increasing order."""
    stages: dict[int, list[str]] = {}
    for record in records:
        tasks = stages.setdefault(record["stage"], [])
        if record["task"] not in tasks:
            tasks.append(record["task"])
    return [tuple(sorted(stages[k])) for k in sorted(stages)]


class PlannedDataset(Dataset):
    """`features` in the plan's order (Trainer must use the sequential sampler)."""

    def __init__(self, features: Sequence[Any], order: Sequence[int]) -> None:
        self.features, self.order = features, order

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, index: int) -> Any:
        return self.features[self.order[index]]
