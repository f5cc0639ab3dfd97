"""pretrain: next-token training of the tiny base model on the synthetic world corpus, so that it
has "pre-training knowledge" which later SFT can extract, conflict with or miss.

For `smollm2` and `hf` the base is already pretrained: the step only materialises it in
`out_dir` (same contract downstream, no training) and notes its source in `report_dir/base.json`."""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow
import torch
from transformers import AutoModelForCausalLM, Trainer, default_data_collator

from components.common.datasets import BlockDataset
from components.common.io import atomic_path, write_json
from components.common.models import base_model_source, build_tiny_model, load_tokenizer
from components.common.params import ModelParams, Profile
from components.common.repro import seed_everything
from components.common.tracking import step_run
from components.common.training import checkpoint_dir, save_loss_curve
from components.pretrain.params import PretrainParams

log = logging.getLogger(__name__)


def run(
    params: PretrainParams,
    model_params: ModelParams,
    profile: Profile,
    data_dir: Path,
    out_dir: Path,
    report_dir: Path,
) -> dict[str, float]:
    seed_everything(params.seed)
    with step_run("pretrain", profile, params):
        if profile != "tiny":
            source = base_model_source(profile, model_params)
            model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
            tokenizer = load_tokenizer(source)
            _save(model, tokenizer, out_dir)
            mlflow.set_tag("pretrain", f"skipped: pretrained base from {source}")
            summary = {"trained": 0.0, "parameters": float(model.num_parameters())}
            # reports/pretrain is a declared DVC output: DVC fails a stage that leaves it missing
            write_json(report_dir / "base.json", {"profile": profile, "source": source} | summary)
            return summary

        tokenizer = load_tokenizer(data_dir / "tokenizer")
        lines = (data_dir / "corpus.txt").read_text(encoding="utf-8").splitlines()
        dataset = BlockDataset(lines, tokenizer, params.block_size)
        model = build_tiny_model(model_params.tiny, tokenizer)
        log.info("tiny model: %d parameters, %d blocks", model.num_parameters(), len(dataset))
        args = params.to_training_arguments(
            checkpoint_dir("pretrain", params.model_dump()), params.seed, save_strategy="no"
        )
        trainer = Trainer(
            model=model, args=args, train_dataset=dataset, data_collator=default_data_collator
        )
        result = trainer.train()
        _save(model, tokenizer, out_dir)
        metrics = {
            "trained": 1.0,
            "parameters": float(model.num_parameters()),
            "train_loss": result.training_loss,
            **save_loss_curve(trainer, report_dir, "tiny base pretraining"),
        }
        mlflow.log_metrics(metrics)
        return metrics


def _save(model, tokenizer, out_dir: Path) -> None:
    with atomic_path(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
