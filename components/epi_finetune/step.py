"""finetune: SFT with Evolving Parameter Isolation (EPI) or one of its baselines.

`transformers.Trainer` runs the training (loss on response tokens only, checkpoints keyed by config
so an interrupted run resumes, LoRA through PEFT as an option); EPI is an optimizer wrapper plus a
callback (isolation.py, trainer_hooks.py). Around the run, callbacks measure per-task accuracy over
time, gradient conflict and per-record losses (monitors.py). The saved model is always a plain
`save_pretrained` directory (LoRA adapters merged)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import mlflow
from peft import LoraConfig, get_peft_model
from transformers import Trainer

from components.common.io import ProjectError, atomic_path, read_jsonl
from components.common.models import load_causal_lm
from components.common.params import Profile
from components.common.repro import seed_everything
from components.common.sft import SFTDataset, encode_record, first_per_task, sft_collator
from components.common.tracking import is_main_process, step_run
from components.common.training import (
    checkpoint_dir,
    file_digest,
    last_checkpoint,
    save_loss_curve,
    training_arguments,
)
from components.epi_finetune import cpi, reports
from components.epi_finetune.isolation import build_isolating_optimizer, eligible_parameters
from components.epi_finetune.methods import isolation_config, trains_in_stages
from components.epi_finetune.monitors import DynamicsMonitor, StageHooks, TaskAccuracyMonitor
from components.epi_finetune.params import FinetuneParams
from components.epi_finetune.schedule import PlannedDataset, build_plan, stages_from_records
from components.epi_finetune.trainer_hooks import attach_isolation

log = logging.getLogger(__name__)


def run(
    params: FinetuneParams,
    profile: Profile,
    data_dir: Path,
    base_dir: Path,
    out_dir: Path,
    report_dir: Path,
) -> dict[str, float]:
    seed_everything(params.seed)
    with step_run("finetune", profile, params):
        records = read_jsonl(data_dir / "train.jsonl")
        if not records:
            raise ProjectError("no training records", file=data_dir / "train.jsonl")
        eval_records = first_per_task(read_jsonl(data_dir / "eval.jsonl"), params.eval_per_task)
        model, tokenizer = load_causal_lm(base_dir)
        if params.lora.enabled:
            lora = params.lora
            model = get_peft_model(
                model,
                LoraConfig(
                    task_type="CAUSAL_LM",
                    r=lora.r,
                    lora_alpha=lora.alpha,
                    lora_dropout=lora.dropout,
                    target_modules=list(lora.target_modules),
                ),
            )
        isolation = isolation_config(params)
        features = [encode_record(tokenizer, r, params.max_length) for r in records]

        cores, cpi_update_ratio = None, None
        stages = [tuple(sorted({r["task"] for r in records}))]
        if params.method == "cpi" and params.schedule == "mixed":
            cores_by_task = cpi.probe_cores(
                model,
                [p for _, p in eligible_parameters(model, isolation.eligible)],
                {
                    task: SFTDataset(
                        [r for r in records if r["task"] == task], tokenizer, params.max_length
                    )
                    for task in stages[0]
                },
                sft_collator(tokenizer),
                params.cpi.probe_steps,
                params.cpi.iso_ratio,
                params.learning_rate,
                params.batch_size,
                params.seed,
            )
            stages = cpi.group_tasks(cores_by_task, params.cpi.jaccard_tau, params.seed)
            cores = [
                cpi.union([cores_by_task[t] for t in group], next(iter(cores_by_task.values())))
                for group in stages
            ]
            if is_main_process():
                mlflow.log_dict({"groups": stages}, "cpi_groups.json")
        elif trains_in_stages(params):
            stages = stages_from_records(records)
            if params.method == "cpi":
                cpi_update_ratio = params.cpi.iso_ratio

        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        samples_per_step = params.batch_size * params.gradient_accumulation_steps * world_size
        plan = build_plan(
            records,
            stages,
            params.max_steps,
            samples_per_step,
            params.seed,
            task_pure_batches=bool(isolation and isolation.per_task_ema),
            stage_steps=params.stage_steps,
        )
        log.info("method %s, stages %s", params.method, plan.stages)

        checkpoints = checkpoint_dir(
            "finetune",
            [
                params.model_dump(),
                file_digest(data_dir / "train.jsonl"),
                file_digest(base_dir / "config.json"),
            ],
        )
        args = training_arguments(
            checkpoints,
            max_steps=params.max_steps,
            per_device_train_batch_size=params.batch_size,
            gradient_accumulation_steps=params.gradient_accumulation_steps,
            learning_rate=params.learning_rate,
            weight_decay=params.weight_decay,
            warmup_steps=int(params.warmup_ratio * params.max_steps),
            max_grad_norm=params.max_grad_norm,
            logging_steps=params.logging_steps,
            save_steps=params.save_steps,
            seed=params.seed,
            train_sampling_strategy="sequential",  # the plan already holds the order
        )
        optimizers = (None, None)
        if isolation is not None:
            optimizers = (build_isolating_optimizer(model, isolation, args=args), None)
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=PlannedDataset(features, plan.order),
            data_collator=sft_collator(tokenizer),
            optimizers=optimizers,
        )
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
                cpi_cores=cores,
                cpi_update_ratio=cpi_update_ratio,
            ),
            accuracy,
            dynamics,
        ):
            trainer.add_callback(callback)

        resume = last_checkpoint(checkpoints) if params.resume else None
        if resume:
            log.info("resuming from %s", resume)
        result = trainer.train(resume_from_checkpoint=resume)
        if not trainer.is_world_process_zero():  # DDP: rank 0 saves, reports and logs
            return {"train_loss": result.training_loss}

        if params.lora.enabled:
            model = model.merge_and_unload()
        with atomic_path(out_dir) as tmp:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        metrics = {
            "train_loss": result.training_loss,
            "train_records": float(len(records)),
            **save_loss_curve(trainer, report_dir, f"SFT ({params.method})"),
        }
        metrics |= reports.write_study_reports(report_dir, plan, accuracy, dynamics, engine)
        mlflow.log_metrics(metrics)
        return metrics
