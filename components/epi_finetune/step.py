"""finetune: SFT with Evolving Parameter Isolation (EPI) or one of its baselines.

`transformers.Trainer` runs the training (loss on response tokens only, checkpoints keyed by config
so an interrupted run resumes, LoRA through PEFT as an option); EPI is an optimizer wrapper plus a
callback (optimizer.py, trainer_hooks.py). Around the run, callbacks measure per-task accuracy over
time, gradient conflict and per-record losses (monitors.py). The saved model is always a plain
`save_pretrained` directory (LoRA adapters merged)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from torch import Tensor, nn
from transformers import Trainer

from components.common.io import ProjectError, read_jsonl
from components.common.models import load_causal_lm, save_model, with_lora
from components.common.params import LoraParams, Profile
from components.common.repro import seed_everything
from components.common.sft import SFTDataset, encode_record, first_per_task, sft_collator
from components.common.tracking import is_main_process, step_run
from components.common.training import checkpoint_dir, file_digest, last_checkpoint, save_loss_curve
from components.epi_finetune import cpi, reports
from components.epi_finetune.engine import ParameterIsolation
from components.epi_finetune.methods import isolation_config, trains_in_stages
from components.epi_finetune.monitors import DynamicsMonitor, StageHooks, TaskAccuracyMonitor
from components.epi_finetune.optimizer import build_isolating_optimizer
from components.epi_finetune.params import FinetuneParams, IsolationConfig
from components.epi_finetune.schedule import (
    PlannedDataset,
    TrainingPlan,
    build_plan,
    stages_from_records,
)
from components.epi_finetune.selection import eligible_parameters
from components.epi_finetune.trainer_hooks import attach_isolation

log = logging.getLogger(__name__)
Records = list[dict[str, Any]]


def run(
    params: FinetuneParams,
    profile: Profile,
    data_dir: Path,
    base_dir: Path,
    out_dir: Path,
    report_dir: Path,
    checkpoint_root: Path = Path("checkpoints"),
) -> dict[str, float]:
    """`checkpoint_root`: on a cluster, the run's workspace, where a retried task (a preempted spot
    node) finds the checkpoints of its previous attempt and resumes from the last one."""
    seed_everything(params.seed)
    with step_run("finetune", profile, params):
        records = read_jsonl(data_dir / "train.jsonl")
        if not records:
            raise ProjectError("no training records", file=data_dir / "train.jsonl")
        eval_records = first_per_task(read_jsonl(data_dir / "eval.jsonl"), params.eval_per_task)
        model, tokenizer = load_model(base_dir, params.lora)
        isolation = isolation_config(params)
        features = [encode_record(tokenizer, r, params.max_length) for r in records]
        stages = plan_stages(params, isolation, model, tokenizer, records)
        plan = schedule(params, isolation, records, stages)
        log.info("method %s, stages %s", params.method, plan.stages)

        checkpoints = checkpoint_dir(
            "finetune",
            [
                params.model_dump(),
                file_digest(data_dir / "train.jsonl"),
                file_digest(base_dir / "config.json"),
            ],
            root=checkpoint_root,
        )
        trainer = build_trainer(params, isolation, model, tokenizer, features, plan, checkpoints)
        monitors = add_monitors(
            trainer, params, isolation, tokenizer, records, eval_records, plan, stages
        )
        resume = last_checkpoint(checkpoints) if params.resume else None
        if resume:
            log.info("resuming from %s", resume)
        result = trainer.train(resume_from_checkpoint=resume)
        if not trainer.is_world_process_zero():  # DDP: rank 0 saves, reports and logs
            return {"train_loss": result.training_loss}

        save_model(model, tokenizer, params.lora.enabled, out_dir)
        metrics = {
            "train_loss": result.training_loss,
            "train_records": float(len(records)),
            **save_loss_curve(trainer, report_dir, f"SFT ({params.method})"),
        }
        metrics |= reports.write_study_reports(
            report_dir, plan, monitors.accuracy, monitors.dynamics, monitors.engine
        )
        mlflow.log_metrics(metrics)
        return metrics


@dataclass
class Stages:
    """The task groups a run trains in, in order; CPI freezes cores between them."""

    tasks: list[tuple[str, ...]]
    cpi_cores: list[list[Tensor]] | None = None  # mixed CPI: one core per group, from probes
    cpi_update_ratio: float | None = None  # sequential CPI: cores from each stage's update


@dataclass
class Monitors:
    """What the callbacks measure during the run, read by the reports afterwards."""

    engine: ParameterIsolation | None
    accuracy: TaskAccuracyMonitor
    dynamics: DynamicsMonitor


def load_model(base_dir: Path, lora: LoraParams) -> tuple[nn.Module, Any]:
    """The base model (wrapped with LoRA adapters when enabled) and its tokenizer."""
    model, tokenizer = load_causal_lm(base_dir)
    return (with_lora(model, lora) if lora.enabled else model), tokenizer


def plan_stages(
    params: FinetuneParams,
    isolation: IsolationConfig | None,
    model: nn.Module,
    tokenizer: Any,
    records: Records,
) -> Stages:
    """One stage of all tasks (mixed), the records' stages (sequential, multistage), or CPI's
    groups of tasks whose probe cores overlap."""
    if params.method == "cpi" and params.schedule == "mixed":
        return cpi_probe_stages(params, isolation, model, tokenizer, records)
    if trains_in_stages(params):
        ratio = params.cpi.iso_ratio if params.method == "cpi" else None
        return Stages(stages_from_records(records), cpi_update_ratio=ratio)
    return Stages([tuple(sorted({r["task"] for r in records}))])


def cpi_probe_stages(
    params: FinetuneParams,
    isolation: IsolationConfig,
    model: nn.Module,
    tokenizer: Any,
    records: Records,
) -> Stages:
    """CPI on a mixed stream: a probe per task, tasks grouped by core overlap, one core a group."""
    tasks = sorted({r["task"] for r in records})
    cores_by_task = cpi.probe_cores(
        model,
        [p for _, p in eligible_parameters(model, isolation.eligible)],
        {
            task: SFTDataset(
                [r for r in records if r["task"] == task], tokenizer, params.max_length
            )
            for task in tasks
        },
        sft_collator(tokenizer),
        params.cpi.probe_steps,
        params.cpi.iso_ratio,
        isolation,
        params.learning_rate,
        params.batch_size,
        params.seed,
    )
    groups = cpi.group_tasks(cores_by_task, params.cpi.jaccard_tau, params.seed)
    like = next(iter(cores_by_task.values()))
    cores = [cpi.union([cores_by_task[t] for t in group], like) for group in groups]
    if is_main_process():
        mlflow.log_dict({"groups": groups}, "cpi_groups.json")
    return Stages(groups, cpi_cores=cores)


def schedule(
    params: FinetuneParams, isolation: IsolationConfig | None, records: Records, stages: Stages
) -> TrainingPlan:
    """The order of every sample of the run (all ranks together under DDP)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    samples_per_step = params.batch_size * params.gradient_accumulation_steps * world_size
    return build_plan(
        records,
        stages.tasks,
        params.max_steps,
        samples_per_step,
        params.seed,
        task_pure_batches=bool(isolation and isolation.per_task_ema),
        stage_steps=params.stage_steps,
    )


def build_trainer(
    params: FinetuneParams,
    isolation: IsolationConfig | None,
    model: nn.Module,
    tokenizer: Any,
    features: list[dict[str, Any]],
    plan: TrainingPlan,
    checkpoints: Path,
) -> Trainer:
    """A Trainer over the planned order, with the isolating optimizer when the method has one."""
    # sequential sampling: the plan already holds the order
    args = params.to_training_arguments(
        checkpoints, params.seed, train_sampling_strategy="sequential"
    )
    optimizer = (
        None if isolation is None else build_isolating_optimizer(model, isolation, args=args)
    )
    return Trainer(
        model=model,
        args=args,
        train_dataset=PlannedDataset(features, plan.order),
        data_collator=sft_collator(tokenizer),
        optimizers=(optimizer, None),
    )


def add_monitors(
    trainer: Trainer,
    params: FinetuneParams,
    isolation: IsolationConfig | None,
    tokenizer: Any,
    records: Records,
    eval_records: Records,
    plan: TrainingPlan,
    stages: Stages,
) -> Monitors:
    """EPI's callback first (so MLflow sees its keys), then stage hooks and the measurements."""
    engine = attach_isolation(trainer).engine if isolation is not None else None
    accuracy = TaskAccuracyMonitor(
        tokenizer,
        eval_records,
        plan,
        params.eval_every,
        max_new_tokens=16,
        max_length=params.max_length,
        engine=engine,
        conflict_params=lambda m: [p for _, p in eligible_parameters(m, "blocks")],
    )
    dynamics = DynamicsMonitor(tokenizer, records, params.dynamics_every, params.max_length)
    for callback in (
        StageHooks(
            plan,
            engine,
            stage_memory=bool(isolation and isolation.stage_memory),
            cpi_cores=stages.cpi_cores,
            cpi_update_ratio=stages.cpi_update_ratio,
        ),
        accuracy,
        dynamics,
    ):
        trainer.add_callback(callback)
    return Monitors(engine, accuracy, dynamics)
