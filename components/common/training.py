"""What every `transformers.Trainer` step shares: arguments, resumable checkpoint folders, and the
loss curve (CSV for `dvc plots`, PNG for MLflow)."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import mlflow
import torch
from transformers import Trainer, TrainingArguments
from transformers.trainer_utils import get_last_checkpoint

from components.common.io import atomic_path
from components.common.plots import line_plot


def training_arguments(output_dir: Path, **overrides: Any) -> TrainingArguments:
    defaults: dict[str, Any] = dict(
        output_dir=str(output_dir),
        report_to=["mlflow"],  # logs into the step's active MLflow run
        save_strategy="steps",
        save_total_limit=1,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        lr_scheduler_type="cosine",
        optim="adamw_torch",
        # a progress bar redrawn in a log file (dvc repro, CI, KFP) is one line per update; there,
        # the Trainer prints its logging lines instead
        disable_tqdm=os.environ.get("CI") == "true" or not sys.stderr.isatty(),
        # pinned memory only speeds up copies to a GPU; without one torch warns on every loader
        dataloader_pin_memory=torch.cuda.is_available(),
        # torchrun without a GPU: Accelerate only sets up DDP (gloo) on CPU when told to use it
        use_cpu=int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available(),
    )
    return TrainingArguments(**(defaults | overrides))


def checkpoint_dir(step: str, fingerprint_of: Any, root: str | os.PathLike = "checkpoints") -> Path:
    """A checkpoint folder keyed by what determines the run, so a resume never mixes configs."""
    digest = hashlib.sha256(json.dumps(fingerprint_of, sort_keys=True, default=str).encode())
    return Path(root) / step / digest.hexdigest()[:12]


def last_checkpoint(directory: Path) -> str | None:
    return get_last_checkpoint(str(directory)) if directory.is_dir() else None


def file_digest(path: str | os.PathLike) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def save_loss_curve(trainer: Trainer, report_dir: Path, title: str) -> dict[str, float]:
    """Write loss.csv and loss.png from the Trainer's log history, log the PNG; return summary."""
    rows = [
        {"step": entry["step"], "loss": entry["loss"]}
        for entry in trainer.state.log_history
        if "loss" in entry
    ]
    with atomic_path(report_dir / "loss.csv") as tmp, tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["step", "loss"])
        writer.writeheader()
        writer.writerows(rows)
    png = line_plot(
        {"train loss": ([r["step"] for r in rows], [r["loss"] for r in rows])},
        report_dir / "loss.png",
        title=title,
        xlabel="optimizer step",
        ylabel="loss",
    )
    mlflow.log_artifact(str(png), artifact_path="plots")
    return {"final_loss": rows[-1]["loss"]} if rows else {}
