"""The study's outputs of one fine-tuning run: CSV series (DVC plots), PNGs (MLflow), and the
summary metrics (final per-task accuracy, forgetting, BWT, gradient conflict, mask drift)."""

from __future__ import annotations

import csv
from pathlib import Path
from statistics import mean
from typing import Any

import mlflow

from components.common.io import atomic_path, write_json
from components.common.plots import bar_plot, line_plot
from components.epi_finetune.engine import ParameterIsolation
from components.epi_finetune.metrics import backward_transfer, forgetting
from components.epi_finetune.monitors import DynamicsMonitor, TaskAccuracyMonitor
from components.epi_finetune.schedule import TrainingPlan


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with atomic_path(path) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["empty"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def _log_png(path: Path) -> None:
    mlflow.log_artifact(str(path), artifact_path="plots")


def accuracy_reports(report_dir: Path, plan: TrainingPlan, monitor: TaskAccuracyMonitor):
    write_csv(report_dir / "task_accuracy.csv", monitor.rows)
    tasks = sorted({row["task"] for row in monitor.rows})
    series = {
        t: (
            [r["step"] for r in monitor.rows if r["task"] == t],
            [r["accuracy"] for r in monitor.rows if r["task"] == t],
        )
        for t in tasks
    }
    _log_png(
        line_plot(
            series,
            report_dir / "task_accuracy.png",
            title="Per-task accuracy",
            xlabel="optimizer step",
            ylabel="exact match",
        )
    )
    for row in monitor.rows:
        mlflow.log_metric(f"task_accuracy.{row['task']}", row["accuracy"], step=row["step"])
    steps = sorted({row["step"] for row in monitor.rows})
    history = [{r["task"]: r["accuracy"] for r in monitor.rows if r["step"] == s} for s in steps]
    metrics: dict[str, float] = {}
    if history:
        metrics |= {f"acc.{t}": a for t, a in history[-1].items()}
        metrics["acc_mean"] = mean(history[-1].values())
        drops = forgetting(history)
        metrics |= {f"forgetting.{t}": f for t, f in drops.items()}
        metrics["forgetting_mean"] = mean(drops.values()) if drops else 0.0
    if len(plan.stages) > 1 and len(monitor.stage_end_accuracy) == len(plan.stages):
        metrics["bwt"] = backward_transfer(monitor.stage_end_accuracy, plan.stages)
    if monitor.conflict_rows:
        write_csv(report_dir / "conflict.csv", monitor.conflict_rows)
        metrics["conflict_mean"] = mean(r["conflict"] for r in monitor.conflict_rows)
        unmasked = [
            r["conflict_unmasked"]
            for r in monitor.conflict_rows
            if r["conflict_unmasked"] is not None
        ]
        if unmasked:
            metrics["conflict_unmasked_mean"] = mean(unmasked)
    return metrics


def drift_reports(report_dir: Path, engine: ParameterIsolation) -> dict[str, float]:
    history = engine.history
    write_json(report_dir / "epi_history.json", history)
    rows = [
        {
            k: h[k]
            for k in (
                "step",
                "jaccard_prev",
                "overlap_first",
                "jaccard_random",
                "overlap_random",
                "released",
                "added",
                "age_mean",
                "frac_isolated",
            )
        }
        for h in history
    ]
    write_csv(report_dir / "drift.csv", rows)
    if not history:
        return {"drift.refreshes": 0.0}
    with_prev = [r for r in rows if r["jaccard_prev"] is not None]
    last = history[-1]
    drift_plots(report_dir, rows, with_prev, last)
    return {
        "drift.jaccard_consecutive_mean": mean(r["jaccard_prev"] for r in with_prev)
        if with_prev
        else 1.0,
        "drift.overlap_first_final": last["overlap_first"] or 0.0,
        "drift.jaccard_random": last["jaccard_random"],
        "drift.refreshes": float(len(history)),
        "epi.age_mean": last["age_mean"],
        "epi.memory_bytes_per_param": engine.memory_bytes() / engine.n_eligible,
    }


def drift_plots(
    report_dir: Path, rows: list[dict[str, Any]], with_prev: list[dict[str, Any]], last: dict
) -> None:
    """Mask overlap over time, churn per refresh, and the last mask's ages and spread."""
    series = {
        "Jaccard(consecutive masks)": (
            [r["step"] for r in with_prev],
            [r["jaccard_prev"] for r in with_prev],
        ),
        "overlap with first mask": (
            [r["step"] for r in rows],
            [r["overlap_first"] or 0.0 for r in rows],
        ),
        "chance Jaccard p/(2-p)": (
            [r["step"] for r in rows],
            [r["jaccard_random"] for r in rows],
        ),
        "chance overlap with first p": (
            [r["step"] for r in rows],
            [r["overlap_random"] for r in rows],
        ),
    }
    _log_png(
        line_plot(
            series,
            report_dir / "drift.png",
            title="Importance-mask drift",
            xlabel="optimizer step",
            ylabel="overlap",
        )
    )
    _log_png(
        line_plot(
            {
                "released": ([r["step"] for r in rows], [r["released"] for r in rows]),
                "added": ([r["step"] for r in rows], [r["added"] for r in rows]),
            },
            report_dir / "mask_churn.png",
            title="Entries released / added per refresh",
            xlabel="optimizer step",
            ylabel="entries",
        )
    )
    _log_png(
        bar_plot(
            last["age_hist"],
            report_dir / "mask_age.png",
            title="Age of isolated entries (refreshes)",
            ylabel="entries",
        )
    )
    layer_fraction = {
        name.replace("model.layers.", "L").replace(".weight", ""): frac
        for name, frac in last["per_tensor_frac"].items()
    }
    _log_png(
        bar_plot(
            layer_fraction,
            report_dir / "layer_fraction.png",
            title="Isolated fraction per tensor",
            ylabel="fraction",
        )
    )


def write_study_reports(
    report_dir: Path,
    plan: TrainingPlan,
    accuracy: TaskAccuracyMonitor,
    dynamics: DynamicsMonitor,
    engine: ParameterIsolation | None,
) -> dict[str, float]:
    write_csv(report_dir / "dynamics.csv", dynamics.rows)
    metrics = accuracy_reports(report_dir, plan, accuracy)
    if engine is not None:
        metrics |= drift_reports(report_dir, engine)
    return metrics
