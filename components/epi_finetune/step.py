"""finetune: supervised fine-tuning with transformers.Trainer (loss on response tokens only),
checkpoints keyed by config so an interrupted run resumes, LoRA through PEFT as an option.

The saved model is always a plain `save_pretrained` directory (LoRA adapters are merged), so every
downstream step loads it the same way."""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow
from peft import LoraConfig, get_peft_model
from transformers import Trainer

from components.common.io import ProjectError, atomic_path, read_jsonl
from components.common.models import load_causal_lm
from components.common.params import FinetuneParams, Profile
from components.common.repro import seed_everything
from components.common.sft import SFTDataset, sft_collator
from components.common.tracking import step_run
from components.common.training import (
    checkpoint_dir,
    file_digest,
    last_checkpoint,
    save_loss_curve,
    training_arguments,
)

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
        dataset = SFTDataset(records, tokenizer, params.max_length)

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
        )
        trainer = Trainer(
            model=model, args=args, train_dataset=dataset, data_collator=sft_collator(tokenizer)
        )
        resume = last_checkpoint(checkpoints) if params.resume else None
        if resume:
            log.info("resuming from %s", resume)
        result = trainer.train(resume_from_checkpoint=resume)

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
        mlflow.log_metrics(metrics)
        return metrics
