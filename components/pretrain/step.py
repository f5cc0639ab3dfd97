"""pretrain: next-token training of the tiny base model on the synthetic world corpus, so that it
has "pre-training knowledge" which later SFT can extract, conflict with or miss.

For `smollm2` and `hf` the base is already pretrained: the step only materialises it in
`out_dir` (same contract downstream, no training)."""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow
import torch
from torch.utils.data import Dataset
from transformers import AutoModelForCausalLM, Trainer, default_data_collator

from components.common.io import ProjectError, atomic_path
from components.common.models import base_model_source, build_tiny_model, load_tokenizer
from components.common.params import ModelParams, PretrainParams, Profile
from components.common.repro import seed_everything
from components.common.tracking import step_run
from components.common.training import checkpoint_dir, save_loss_curve, training_arguments

log = logging.getLogger(__name__)


class BlockDataset(Dataset):
    """The corpus as one token stream (lines joined by EOS) cut into fixed-length blocks."""

    def __init__(self, lines: list[str], tokenizer, block_size: int) -> None:
        ids: list[int] = []
        for line in lines:
            ids.extend(tokenizer(line, add_special_tokens=False)["input_ids"])
            ids.append(tokenizer.eos_token_id)
        n_blocks = len(ids) // block_size
        if n_blocks == 0:
            raise ProjectError(
                f"corpus has {len(ids)} tokens, fewer than one block of {block_size}"
            )
        self.blocks = torch.tensor(ids[: n_blocks * block_size]).view(n_blocks, block_size)

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        block = self.blocks[index]
        return {
            "input_ids": block,
            "labels": block.clone(),
            "attention_mask": torch.ones_like(block),
        }


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
            return {"trained": 0.0, "parameters": float(model.num_parameters())}

        tokenizer = load_tokenizer(data_dir / "tokenizer")
        lines = (data_dir / "corpus.txt").read_text(encoding="utf-8").splitlines()
        dataset = BlockDataset(lines, tokenizer, params.block_size)
        model = build_tiny_model(model_params.tiny, tokenizer)
        log.info("tiny model: %d parameters, %d blocks", model.num_parameters(), len(dataset))
        args = training_arguments(
            checkpoint_dir("pretrain", params.model_dump()),
            max_steps=params.max_steps,
            per_device_train_batch_size=params.batch_size,
            learning_rate=params.learning_rate,
            weight_decay=params.weight_decay,
            warmup_steps=int(params.warmup_ratio * params.max_steps),
            logging_steps=params.logging_steps,
            save_strategy="no",
            seed=params.seed,
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
