"""seg_train: train the dual-task network (or, with its extra terms off, the plain one) on the
training domains' cases, leaving the last `holdout_per_domain` of each for validation and the
test domains untouched. Writes the model (state_dict + config.json) and the loss curve.

CLI: `python -m components.seg_train train --params params.yaml [--set k=v]`."""

from __future__ import annotations

import csv
import logging
import time
from pathlib import Path

import numpy as np

from components.common.cli import path_arguments, step_main, step_parser
from components.common.io import atomic_path
from components.common.msd import read_domains, require_lesions
from components.common.params import Profile
from components.common.plots import line_plot
from components.common.repro import seed_everything
from components.common.tracking import step_run
from components.seg_train.params import SegTrainParams, SegTrainStep

log = logging.getLogger(__name__)
TERMS = ("loss", "seg", "sdf", "reciprocal", "consistency", "contrastive")


def write_history(history: list[dict[str, float]], report_dir: Path) -> Path:
    """loss.csv (every term, blank where a term was skipped) and loss.png."""
    columns = ["step", *[t for t in TERMS if any(t in row for row in history)]]
    with atomic_path(report_dir / "loss.csv") as tmp, tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(history)
    series = {}
    for term in columns[1:]:
        rows = [row for row in history if term in row]
        series[term] = ([row["step"] for row in rows], [row[term] for row in rows])
    return line_plot(
        series, report_dir / "loss.png", title="seg_train loss", xlabel="iteration", ylabel="loss"
    )


def training_cases(params: SegTrainParams, data_dir: Path) -> list[dict]:
    """The training domains' cases less the held-out ones; a lesion model needs lesions in each
    domain's (checked before any MLflow run is opened)."""
    from components.seg_train.train import split_cases  # torch and MONAI: see run

    domains = read_domains(data_dir)
    cases, _ = split_cases(
        domains, params.train_domains, params.holdout_per_domain, "seg_train.train_domains"
    )
    if params.target == "lesion":
        require_lesions(
            {name: [c for c in cases if c["domain"] == name] for name in params.train_domains}
        )
    return cases


def run(
    params: SegTrainParams, profile: Profile, data_dir: Path, model_dir: Path, report_dir: Path
) -> dict[str, float]:
    # MLflow, torch and MONAI load here, once params are valid: `--help` needs none of them
    import mlflow

    from components.seg_train.train import save_model, train

    seed_everything(params.seed)
    cases = training_cases(params, data_dir)
    with step_run("seg_train", profile, params):
        started = time.perf_counter()
        model, history = train(
            params,
            cases,
            on_log=lambda row: mlflow.log_metrics(
                {f"train.{k}": v for k, v in row.items() if k != "step"}, step=int(row["step"])
            ),
        )
        seconds = time.perf_counter() - started
        with atomic_path(model_dir) as tmp:
            tmp.mkdir()
            save_model(model, params, tmp)
        png = write_history(history, report_dir)
        mlflow.log_artifact(str(png), artifact_path="plots")
        mlflow.log_artifact(str(report_dir / "loss.csv"))
        tail = history[-min(len(history), 20) :]
        metrics = {
            "train_cases": len(cases),
            "iterations": len(history),
            "final_loss": float(np.mean([row["loss"] for row in tail])),
            "parameters": sum(p.numel() for p in model.parameters()),
        }
        mlflow.log_metrics({**metrics, "seconds_per_iteration": seconds / len(history)})
        log.info(
            "seg_train wrote %s: %s (%.2f s/iteration)", model_dir, metrics, seconds / len(history)
        )
        return metrics


def main(argv: list[str] | None = None) -> int:
    parser = step_parser(
        "components.seg_train train",
        "Train the segmentation network on the training domains.",
        SegTrainStep,
    )
    path_arguments(
        parser, "inputs", data=("data/ct", "ct_data's output: the CT volumes per domain")
    )
    path_arguments(
        parser,
        "outputs",
        out=("models/seg", "the network's state_dict and config"),
        reports=("reports/seg/train", "the loss curve (loss.csv, loss.png)"),
    )
    args = parser.parse_args(argv)
    return step_main(
        "seg_train",
        args,
        SegTrainStep,
        lambda p: run(p.seg_train, p.profile, args.data, args.out, args.reports),
    )
