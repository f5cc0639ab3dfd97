"""evaluate: exact-match accuracy per task on the eval split (batched greedy generation), the model
logged and registered in MLflow as a new `challenger`, promoted to `champion` only when it beats the
current champion on the configured metric."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import mlflow

from components.common.io import ProjectError, read_jsonl, write_jsonl
from components.common.models import load_causal_lm
from components.common.params import Profile
from components.common.plots import bar_plot
from components.common.repro import seed_everything
from components.common.serving import log_answering_model
from components.common.sft import first_per_task, greedy_record_answers
from components.common.tracking import register_and_promote, step_run
from components.evaluate.params import EvaluateParams


def exact_match_by_task(records: list[dict[str, Any]], answers: list[str]) -> dict[str, float]:
    hits: dict[str, list[bool]] = defaultdict(list)
    for record, answer in zip(records, answers, strict=True):
        hits[record["task"]].append(answer == record["response"].strip())
    return {task: sum(values) / len(values) for task, values in sorted(hits.items())}


def run(
    params: EvaluateParams, profile: Profile, data_dir: Path, model_dir: Path, report_dir: Path
) -> dict[str, float]:
    seed_everything(params.seed)
    with step_run("evaluate", profile, params):
        records = read_jsonl(data_dir / "eval.jsonl")
        if params.max_per_task:
            records = first_per_task(records, params.max_per_task)
        if not records:
            raise ProjectError("no evaluation records", file=data_dir / "eval.jsonl")
        model, tokenizer = load_causal_lm(model_dir)
        answers = greedy_record_answers(
            model, tokenizer, records, params.max_new_tokens, params.batch_size
        )
        per_task = exact_match_by_task(records, answers)
        metrics = {f"accuracy.{task}": value for task, value in per_task.items()}
        metrics["accuracy_mean"] = sum(per_task.values()) / len(per_task)
        if params.promote_metric not in metrics:
            raise ProjectError(
                f"unknown metric {params.promote_metric!r}; have {sorted(metrics)}",
                field="evaluate.promote_metric",
            )
        mlflow.log_metrics(metrics)

        write_jsonl(
            report_dir / "predictions.jsonl",
            [
                {"id": r["id"], "task": r["task"], "expected": r["response"], "answer": a}
                for r, a in zip(records, answers, strict=True)
            ],
        )
        png = bar_plot(
            per_task, report_dir / "accuracy.png", title="Exact match per task", ylabel="accuracy"
        )
        mlflow.log_artifact(str(png), artifact_path="plots")
        mlflow.log_artifact(str(report_dir / "predictions.jsonl"))

        info = log_answering_model(model, tokenizer, params.max_new_tokens)
        metrics |= register_and_promote(
            info.model_uri,
            params.registered_model_name,
            params.promote_metric,
            metrics[params.promote_metric],
            params.greater_is_better,
            tags={"profile": profile},
        )
        return metrics
