"""CPI-FT / DPI static isolation, the baseline EPI is compared with.

Mixed schedule: a short SFT probe per task from θ⁰ scores |θ⁽ⁱ⁾ − θ⁰| per element; its top-p is the
task's core; tasks whose cores overlap (Jaccard ≥ τ) form one group (connected components); the
groups are trained as stages in a seeded random order, and the cores of earlier groups stay frozen.
Sequential schedule ("CPI-FT-lite"): the core of each finished stage is the top-p of that stage's
own update, frozen afterwards. CPI-FT's SLERP fusion is not part of it (DPI has none either)."""

from __future__ import annotations

import random
import tempfile
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset
from transformers import Trainer, TrainingArguments

from components.epi_finetune.index_sets import global_to_masks
from components.epi_finetune.params import IsolationConfig
from components.epi_finetune.selection import top_fraction


def jaccard(a: Sequence[Tensor], b: Sequence[Tensor]) -> float:
    inter = sum(int((x & y).sum()) for x, y in zip(a, b, strict=True))
    union = sum(int((x | y).sum()) for x, y in zip(a, b, strict=True))
    return inter / union if union else 0.0


def update_core(
    before: Sequence[Tensor], params: Sequence[Tensor], ratio: float, limits: IsolationConfig
) -> list[Tensor]:
    """Top-`ratio` entries of |θ_now − θ_before| over all tensors together (selected within
    EPI's `limits`)."""
    deltas = [(p.detach() - b).abs() for p, b in zip(params, before, strict=True)]
    picked, _ = top_fraction(
        lambda i: deltas[i].float(), [d.numel() for d in deltas], ratio, limits
    )
    return global_to_masks(picked, deltas)


def probe_cores(
    model: nn.Module,
    params: Sequence[nn.Parameter],
    task_datasets: Mapping[str, Dataset],
    collator,
    probe_steps: int,
    ratio: float,
    limits: IsolationConfig,
    learning_rate: float,
    batch_size: int,
    seed: int,
) -> dict[str, list[Tensor]]:
    """Each task's core from a `probe_steps` SFT probe; the model is restored to θ⁰ after each."""
    start = [p.detach().clone() for p in params]
    full_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    cores = {}
    with tempfile.TemporaryDirectory() as scratch:
        for task, dataset in task_datasets.items():
            # A probe, not the run: constant LR, no decay or warm-up, nothing saved or logged,
            # so the run's TrainingArguments mapping does not apply.
            args = TrainingArguments(
                output_dir=scratch,
                max_steps=probe_steps,
                per_device_train_batch_size=batch_size,
                learning_rate=learning_rate,
                lr_scheduler_type="constant",
                report_to="none",
                save_strategy="no",
                seed=seed,
                disable_tqdm=True,
                remove_unused_columns=False,
            )
            Trainer(model=model, args=args, train_dataset=dataset, data_collator=collator).train()
            cores[task] = update_core(start, params, ratio, limits)
            model.load_state_dict(full_state)
    return cores


def group_tasks(
    cores: Mapping[str, Sequence[Tensor]], tau: float, seed: int
) -> list[tuple[str, ...]]:
    """Connected components of the "cores overlap by J ≥ τ" graph, in a seeded random order."""
    tasks = sorted(cores)
    parent = {t: t for t in tasks}

    def root(t: str) -> str:
        while parent[t] != t:
            t = parent[t]
        return t

    for i, a in enumerate(tasks):
        for b in tasks[i + 1 :]:
            if jaccard(cores[a], cores[b]) >= tau:
                parent[root(b)] = root(a)
    groups: dict[str, list[str]] = {}
    for t in tasks:
        groups.setdefault(root(t), []).append(t)
    ordered = [tuple(g) for g in groups.values()]
    random.Random(seed).shuffle(ordered)
    return ordered


def union(masks: Sequence[Sequence[Tensor]], like: Sequence[Tensor]) -> list[Tensor]:
    out = [torch.zeros_like(p, dtype=torch.bool) for p in like]
    for mask in masks:
        out = [a | b for a, b in zip(out, mask, strict=True)]
    return out
