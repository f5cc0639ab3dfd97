"""Trainer callbacks that carry the study around an SFT run.

- StageHooks: per-step task for `per_task_ema`; at stage boundaries the `stage_memory` snapshot
  and the CPI cores of finished stages.
- TaskAccuracyMonitor: per-task exact match every N steps and at every stage end, plus the
  gradient conflict score between tasks (before and after removing isolated coordinates).
- DynamicsMonitor: every E steps, the response loss of every training record (for ILP).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from transformers import TrainerCallback

from components.common.sft import (
    encode_record,
    greedy_record_answers,
    per_record_loss,
    sft_collator,
)
from components.epi_finetune.cpi import union, update_core
from components.epi_finetune.engine import ParameterIsolation
from components.epi_finetune.metrics import conflict_score
from components.epi_finetune.schedule import TrainingPlan


class StageHooks(TrainerCallback):
    def __init__(
        self,
        plan: TrainingPlan,
        engine: ParameterIsolation | None,
        *,
        stage_memory: bool = False,
        cpi_cores: Sequence[Sequence[Tensor]] | None = None,
        cpi_update_ratio: float | None = None,
    ) -> None:
        self.plan, self.engine = plan, engine
        self.stage_memory = stage_memory
        self.cpi_cores = list(cpi_cores) if cpi_cores is not None else None
        self.cpi_update_ratio = cpi_update_ratio  # sequential CPI: cores from each stage's update
        self._stage_start: list[Tensor] | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        if self.cpi_update_ratio is not None:
            self._stage_start = [p.detach().clone() for p in self.engine.params]

    def on_step_begin(self, args, state, control, **kwargs):
        step = state.global_step  # 0-based index of the optimizer step about to run
        if self.engine is None or step >= len(self.plan.stage_of_step):
            return
        task = self.plan.task_of_step[step]
        if self.engine.config.per_task_ema and task is not None:
            self.engine.set_task(task)
        stage = self.plan.stage_of_step[step]
        if step == 0 or stage == self.plan.stage_of_step[step - 1]:
            return
        if self.stage_memory:
            self.engine.end_stage()
        if self.cpi_update_ratio is not None:
            core = update_core(
                self._stage_start, self.engine.params, self.cpi_update_ratio, self.engine.config
            )
            self.cpi_cores = [*(self.cpi_cores or []), core]
            self._stage_start = [p.detach().clone() for p in self.engine.params]
        if self.cpi_cores is not None:
            frozen = union(self.cpi_cores[:stage], self.engine.params)
            self.engine.set_mask(frozen)


class TaskAccuracyMonitor(TrainerCallback):
    def __init__(
        self,
        tokenizer,
        eval_records: Sequence[dict[str, Any]],
        plan: TrainingPlan,
        every: int,
        max_new_tokens: int,
        max_length: int,
        engine: ParameterIsolation | None,
        conflict_params: Callable[[nn.Module], list[nn.Parameter]],
    ) -> None:
        self.tokenizer, self.records, self.plan, self.every = tokenizer, eval_records, plan, every
        self.max_new_tokens, self.max_length, self.engine = max_new_tokens, max_length, engine
        self.conflict_params = conflict_params
        self.stage_ends = set(plan.stage_ends())
        self.rows: list[dict[str, Any]] = []  # {step, stage, task, accuracy}
        self.stage_end_accuracy: list[dict[str, float]] = []
        self.conflict_rows: list[dict[str, Any]] = []

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        answers = greedy_record_answers(
            model, self.tokenizer, self.records, self.max_new_tokens, batch_size=64
        )
        hits: dict[str, list[bool]] = defaultdict(list)
        for record, answer in zip(self.records, answers, strict=True):
            hits[record["task"]].append(answer == record["response"].strip())
        return {task: sum(v) / len(v) for task, v in sorted(hits.items())}

    def on_step_end(self, args, state, control, model=None, **kwargs):
        step = state.global_step
        if step % self.every and step not in self.stage_ends:
            return
        if not state.is_world_process_zero:
            return
        stage = self.plan.stage_of_step[step - 1]
        accuracy = self.evaluate(model)
        self.rows.extend(
            {"step": step, "stage": stage, "task": t, "accuracy": a} for t, a in accuracy.items()
        )
        if step in self.stage_ends:
            self.stage_end_accuracy.append(accuracy)
        self.conflict_rows.extend(self.conflicts(model, step))

    def conflicts(self, model: nn.Module, step: int) -> list[dict[str, Any]]:
        params = self.conflict_params(model)
        grads = {
            task: self._task_gradient(model, params, task)
            for task in sorted({r["task"] for r in self.records})
        }
        if len(grads) < 2:
            return []
        mask = self.engine.mask if self.engine is not None else None
        rows = []
        for task, g in grads.items():
            others = [sum(grads[o][i] for o in grads if o != task) for i in range(len(params))]
            rows.append(
                {
                    "step": step,
                    "task": task,
                    "conflict": conflict_score(g, others),
                    "conflict_unmasked": conflict_score(g, others, exclude=mask)
                    if mask is not None
                    else None,
                }
            )
        return rows

    def _task_gradient(self, model, params, task) -> list[Tensor]:
        records = [r for r in self.records if r["task"] == task][:16]
        batch = sft_collator(self.tokenizer)(
            [encode_record(self.tokenizer, r, self.max_length) for r in records]
        ).to(model.device)
        loss = model(**batch).loss
        return [g.detach() for g in torch.autograd.grad(loss, params)]


class DynamicsMonitor(TrainerCallback):
    def __init__(
        self, tokenizer, train_records: Sequence[dict[str, Any]], every: int, max_length: int
    ) -> None:
        self.tokenizer, self.records, self.every, self.max_length = (
            tokenizer,
            list(train_records),
            every,
            max_length,
        )
        self.rows: list[dict[str, Any]] = []  # {id, step, loss}

    def record(self, model: nn.Module, step: int) -> None:
        losses = per_record_loss(model, self.tokenizer, self.records, self.max_length)
        self.rows.extend(
            {"id": r["id"], "step": step, "loss": loss}
            for r, loss in zip(self.records, losses, strict=True)
        )

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if state.global_step == 0 and state.is_world_process_zero:
            self.record(model, 0)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.every == 0 and state.is_world_process_zero:
            self.record(model, state.global_step)
