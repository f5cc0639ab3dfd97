"""The end of `make repro`: `python -m pipelines.summary` after `dvc repro`.

Prints one line per DVC stage (its headline figure and a verdict against the demo targets below),
then writes `reports/index.md`: every stage's headline metrics, its plots, its MLflow run and the
registered models' champion and challenger versions. The last line printed names the report.

It reads what the stages left (dvc.yaml, metrics/*.json, reports/**.png, the MLflow store) and
changes none of it, so it is no DVC stage and `dvc repro` never re-runs because of it."""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from mlflow import MlflowClient

from components.common.io import atomic_path
from components.common.tracking import (
    CHALLENGER,
    CHAMPION,
    DEFAULT_EXPERIMENT,
    tracking_uri,
)


@dataclass(frozen=True)
class Figure:
    """One headline number of a stage: `key` of its metrics file (a pattern with `*`: the sum of
    the keys it matches; with `complement`: 1 - the value), and the demo run's target for it
    (`minimum`), if it has one."""

    label: str
    key: str
    minimum: float | None = None
    complement: bool = False


# The headline figures of every stage and the demo targets of issue 14, in one place.
HEADLINES: dict[str, tuple[Figure, ...]] = {
    "data_prep": (Figure("training records", "train_records"),),
    "pretrain": (Figure("final loss", "final_loss"),),
    "finetune": (Figure("final loss", "final_loss"),),
    "ilp_diagnosis": (
        Figure("share of training records learned", "unlearned_rate", 0.5, complement=True),
    ),
    "evaluate": (Figure("held-out exact match, mean over tasks", "accuracy_mean", 0.6),),
    "ct_data": (Figure("cases", "cases.*"),),
    "seg_train": (Figure("final loss", "final_loss"),),
    "seg_evaluate": (Figure("validation Dice", "dice_val", 0.6),),
    "grm_data": (Figure("training questions", "train_questions"),),
    "grm_policy": (Figure("final SFT loss", "sft.final_loss"),),
    "grm_scorer": (Figure("validation best-of-K accuracy", "val.best_of_k.scorer"),),
    "grm_grpo": (Figure("GRPO steps (0: the SFT policy passed through)", "grpo.steps"),),
    "grm_evaluate": (
        Figure("policy direct accuracy", "always_direct.accuracy", 0.5),
        Figure("consensus AUROC", "auroc.consensus_vs_mode", 0.7),
    ),
    "knowtuning_data": (Figure("training answers", "train_records"),),
    "knowtuning_base": (Figure("final loss", "final_loss"),),
    "knowtuning_sft": (Figure("final loss", "final_loss"),),
    "knowtuning_augment": (Figure("KA records (QA pairs or triples)", "augmented_records"),),
    "knowtuning_ka": (Figure("final loss", "final_loss"),),
    "knowtuning_compare": (Figure("DPO reward accuracy", "dpo_reward_accuracy"),),
    "knowtuning_evaluate": (
        Figure("trained entities' completeness, KnowTuning", "eval.kt.completeness"),
        Figure("held-out completeness, SFT", "test.sft.completeness"),
        Figure("held-out completeness, KnowTuning", "test.kt.completeness"),
    ),
    "atm_data": (Figure("training questions", "train_questions"),),
    "atm_index": (Figure("documents embedded", "documents"),),
    "atm_retrieve": (Figure("test recall@5, dense", "test.dense.recall@5"),),
    "atm_base": (Figure("final loss", "final_loss"),),
    "atm_generator_sft": (Figure("final loss", "final_loss"),),
    "atm_attacker_sft": (Figure("final loss", "final_loss"),),
    "atm_rounds": (Figure("last round's dev EM under attack", "final_em_attacked"),),
    "atm_evaluate": (
        Figure("test EM clean, ATM", "atm.clean.em"),
        Figure("test EM, 2 held-out fabrications on top, SFT", "sft.heldout_2_top.em"),
        Figure("test EM, 2 held-out fabrications on top, ATM", "atm.heldout_2_top.em"),
    ),
    "govern_data": (Figure("unlabeled samples", "unlabeled_samples"),),
    "govern_distill": (Figure("GOVERN student's final loss", "govern.final_loss"),),
    "govern_evaluate": (
        Figure("test AUC, mean-KD student", "mean.auc"),
        Figure("test AUC, GOVERN student", "govern.auc"),
        Figure("test AUC, the teachers' mean", "ensemble_mean.auc"),
    ),
    "rlhb_data": (Figure("logged triplets", "logs"),),
    "rlhb_train": (Figure("RLHB's last mean reward (D's logit)", "rlhb.final_reward"),),
    "rlhb_evaluate": (
        Figure("hidden utility under b*, SFT", "sft.score"),
        Figure("hidden utility under b*, RLHB", "rlhb.score"),
    ),
}
PASS, MISS, RAN, NOT_RUN = "PASS", "MISS", "ran", "not run"
MLFLOW_UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves by default


@dataclass(frozen=True)
class Stage:
    """A DVC stage as the summary needs it: its metrics file and its report folders."""

    name: str
    metrics_file: Path
    report_dirs: tuple[Path, ...]


@dataclass(frozen=True)
class Outcome:
    stage: Stage
    metrics: dict[str, float] | None  # None: the stage wrote no metrics file
    figures: tuple[tuple[Figure, float | None], ...]  # None: the key is not in the metrics

    @property
    def verdict(self) -> str:
        if self.metrics is None:
            return NOT_RUN
        targeted = [(f.minimum, v) for f, v in self.figures if f.minimum is not None]
        if not targeted:
            return RAN
        met = all(value is not None and value >= minimum for minimum, value in targeted)
        return PASS if met else MISS


def read_stages(root: Path) -> list[Stage]:
    """dvc.yaml's stages that write metrics, in pipeline order, with their reports/ outs."""
    declared = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    return [
        Stage(
            name,
            root / _out_paths(spec["metrics"])[0],
            tuple(root / p for p in _out_paths(spec.get("outs", [])) if p.startswith("reports/")),
        )
        for name, spec in declared.items()
        if spec.get("metrics")
    ]


def _out_paths(entries: Sequence[str | Mapping[str, Any]]) -> list[str]:
    # dvc.yaml lists an out either as a path or as {path: options}
    return [e if isinstance(e, str) else next(iter(e)) for e in entries]


def outcome(stage: Stage) -> Outcome:
    if not stage.metrics_file.is_file():
        return Outcome(stage, None, ())
    metrics = json.loads(stage.metrics_file.read_text())
    figures = tuple((f, figure_value(f, metrics)) for f in HEADLINES.get(stage.name, ()))
    return Outcome(stage, metrics, figures)


def figure_value(figure: Figure, metrics: Mapping[str, float]) -> float | None:
    matched = [float(v) for k, v in metrics.items() if fnmatch.fnmatchcase(k, figure.key)]
    if not matched:
        return None
    return 1.0 - sum(matched) if figure.complement else sum(matched)


def describe(figure: Figure, value: float | None) -> str:
    text = f"{figure.label} {format_number(value) if value is not None else 'missing'}"
    return text if figure.minimum is None else f"{text} (target >= {figure.minimum:g})"


def format_number(value: float) -> str:
    if math.isnan(value) or value == int(value):
        return f"{value:g}"
    return f"{value:.3f}" if abs(value) < 1000 else f"{value:.0f}"


def headline(result: Outcome) -> str:
    if result.metrics is None:
        return f"no {result.stage.metrics_file.name}"
    return "; ".join(describe(f, v) for f, v in result.figures) or "no headline figure"


def summary_lines(results: Sequence[Outcome]) -> list[str]:
    width = max(len(r.stage.name) for r in results)
    lines = [f"{r.stage.name:<{width}}  {r.verdict:<7}  {headline(r)}" for r in results]
    targeted = [r for r in results if r.verdict in (PASS, MISS)]
    met = sum(r.verdict == PASS for r in targeted)
    return [f"demo targets: {met} of {len(targeted)} stages met", *lines]


# --- MLflow: the step runs and the registry -------------------------------------------------------


def tracking_store_exists(uri: str) -> bool:
    """False for a SQLite store not created yet (opening it would create an empty one)."""
    prefix = "sqlite:///"
    return not uri.startswith(prefix) or Path(uri.removeprefix(prefix)).is_file()


def latest_runs(client: MlflowClient, experiment_name: str, steps: Sequence[str]) -> dict[str, Any]:
    """The newest MLflow run of each step (tag `step`), by step name."""
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        return {}
    runs = {}
    for step in steps:
        found = client.search_runs(
            [experiment.experiment_id],
            filter_string=f"tags.step = '{step}'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        if found:
            runs[step] = found[0]
    return runs


def run_link(run: Any) -> str:
    info = run.info
    url = f"{MLFLOW_UI}/#/experiments/{info.experiment_id}/runs/{info.run_id}"
    return f"[{info.run_name}]({url}) `{info.run_id}`"


def model_rows(client: MlflowClient) -> list[str]:
    rows = []
    for model in sorted(client.search_registered_models(), key=lambda m: m.name):
        aliases = model.aliases or {}
        champion, challenger = aliases.get(CHAMPION, "-"), aliases.get(CHALLENGER, "-")
        rows.append(f"| `{model.name}` | {champion} | {challenger} |")
    return rows


# --- the report -----------------------------------------------------------------------------------


def stage_section(result: Outcome, report: Path, run: Any | None) -> list[str]:
    lines = [f"## {result.stage.name}", "", f"**{result.verdict}**: {headline(result)}", ""]
    if result.metrics:  # folded: grm_evaluate alone has about a hundred
        lines += [f"<details><summary>all {len(result.metrics)} metrics</summary>", ""]
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| `{k}` | {_cell(v)} |" for k, v in result.metrics.items()]
        lines += ["", "</details>", ""]
    lines += [f"MLflow run: {run_link(run)}" if run else "MLflow run: none found", ""]
    for png in sorted(p for d in result.stage.report_dirs for p in d.rglob("*.png")):
        link = png.relative_to(report.parent).as_posix()
        lines += [f"![{link}]({link})", ""]
    return lines


def _anchor(stage: str) -> str:
    return f"[{stage}](#{stage})"  # each stage's section is headed by its name


def _cell(value: Any) -> str:
    return format_number(value) if isinstance(value, int | float) else f"`{value}`"


def write_report(
    report: Path, results: Sequence[Outcome], runs: Mapping[str, Any], models: Sequence[str]
) -> Path:
    lines = ["# Run report", "", "Written by `python -m pipelines.summary` after `dvc repro`.", ""]
    lines += ["| stage | verdict | headline |", "|---|---|---|"]
    lines += [f"| {_anchor(r.stage.name)} | {r.verdict} | {headline(r)} |" for r in results]
    lines.append("")
    for result in results:
        lines += stage_section(result, report, runs.get(result.stage.name))
    lines += ["## Registered models", ""]
    if models:
        lines += ["| model | champion | challenger |", "|---|---|---|", *models]
    else:
        lines.append("none")
    lines += ["", f"MLflow UI: `mlflow ui --backend-store-uri {tracking_uri()}`, then {MLFLOW_UI}"]
    with atomic_path(report) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return report


def mlflow_records(stages: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    """(the newest run of each step, the registry's rows); empty without a tracking store."""
    uri = tracking_uri()
    if not tracking_store_exists(uri):
        return {}, []
    client = MlflowClient(uri)
    experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME", DEFAULT_EXPERIMENT)
    return latest_runs(client, experiment, stages), model_rows(client)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.summary", description=__doc__)
    parser.add_argument("--root", type=Path, default=Path("."), help="the project checkout")
    args = parser.parse_args(argv)
    results = [outcome(stage) for stage in read_stages(args.root)]
    print("\n".join(summary_lines(results)))
    runs, models = mlflow_records([r.stage.name for r in results])
    report = write_report(args.root / "reports" / "index.md", results, runs, models)
    print(f"run report: {report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
