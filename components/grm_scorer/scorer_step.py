"""grm_scorer: sample K CoT paths per scorer question from the policy, label them by graded path
quality, train S_phi with the hybrid loss, log it as an MLflow pyfunc and register it as
`grm-scorer` (alias challenger; grm_evaluate moves champion).

    python -m components.grm_scorer scorer --data data/reasoning --policy models/grm_policy \
        --out models/grm_scorer

Outputs in `out_dir`: the scorer directory (scorer.py's format) plus registry.json."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import mlflow

from components.common.cli import path_arguments, step_main, step_parser
from components.common.io import atomic_path, write_json
from components.common.models import load_causal_lm
from components.common.params import Profile
from components.common.plots import line_plot
from components.common.repro import seed_everything
from components.common.tracking import register, step_run
from components.grm_scorer import reasoning
from components.grm_scorer.cost import finite
from components.grm_scorer.decode import cot_samples
from components.grm_scorer.params import GatingParams, GrmParams, GrmStep, ScorerParams
from components.grm_scorer.policy_step import paired_records
from components.grm_scorer.pyfunc import log_scorer
from components.grm_scorer.scorer import Scorer, build_scorer, save_scorer
from components.grm_scorer.scorer_train import PathSet, build_path_set, fit_scorer, split_groups

log = logging.getLogger(__name__)


def cot_suffix_of(pair: dict[str, dict]) -> str:
    """The CoT suffix as the data step wrote it: the CoT prompt minus the direct one."""
    direct, cot = pair["direct"]["prompt"], pair["cot"]["prompt"]
    return cot[len(direct) :] if cot.startswith(direct) else ""


def policy_path_set(
    policy_dir: Path, data_file: Path, gating: GatingParams, scorer: ScorerParams, seed: int
) -> tuple[PathSet, str]:
    """The policy's K CoT paths on every question of `data_file`, labelled, plus synthetic ones."""
    pairs = paired_records(data_file)
    suffix = cot_suffix_of(pairs[0])
    problems = [reasoning.problem_of(p["direct"]) for p in pairs]
    model, tokenizer = load_causal_lm(policy_dir)
    samples, generations = cot_samples(
        model, tokenizer, [p.question for p in problems], gating, seed, suffix
    )
    texts = [
        generations.texts[i : i + gating.k] for i in range(0, len(generations.texts), gating.k)
    ]
    answers = [[s.answer for s in row] for row in samples]
    return build_path_set(problems, texts, answers, scorer.synthetic_paths, seed), suffix


def train_and_save(
    scorer: Scorer, data: PathSet, params: ScorerParams, seed: int, report_dir: Path
) -> dict[str, float]:
    train, val = split_groups(data, params.val_fraction, seed)
    best, history = fit_scorer(scorer, train, val, params, seed)
    with atomic_path(report_dir / "history.csv") as tmp, tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    epochs = [row["epoch"] for row in history]
    png = line_plot(
        {
            "val pairwise accuracy": (epochs, [r["pairwise_accuracy.all_paths"] for r in history]),
            "val best-of-K (scorer)": (epochs, [r["best_of_k.scorer"] for r in history]),
            "val best-of-K (vote)": (epochs, [r["best_of_k.vote"] for r in history]),
        },
        report_dir / "validation.png",
        title="grm scorer validation",
        xlabel="epoch",
        ylabel="accuracy",
    )
    mlflow.log_artifact(str(png), artifact_path="plots")
    return best


def run(
    params: GrmParams,
    profile: Profile,
    data_dir: Path,
    policy_dir: Path,
    out_dir: Path,
    report_dir: Path,
) -> dict[str, float]:
    seed_everything(params.seed)
    with step_run("grm_scorer", profile, params.scorer):
        data, suffix = policy_path_set(
            policy_dir, data_dir / "scorer.jsonl", params.gating, params.scorer, params.seed
        )
        own = [label for label, flag in zip(data.labels, data.from_policy, strict=True) if flag]
        metrics: dict[str, float] = {
            "paths.policy": float(len(own)),
            "paths.synthetic": float(len(data.labels) - len(own)),
            "paths.policy_quality_mean": sum(own) / len(own),
            "paths.policy_fully_correct": sum(q == 1.0 for q in own) / len(own),
        }
        scorer = build_scorer(params.scorer, policy_dir, suffix)
        metrics |= train_and_save(scorer, data, params.scorer, params.seed, report_dir)
        with atomic_path(out_dir) as tmp:
            save_scorer(scorer, tmp)
            uri = log_scorer(tmp)
            value = metrics["val.best_of_k.scorer"]
            version = register(
                uri,
                params.scorer.registered_model_name,
                tags={
                    "val.best_of_k.scorer": value,
                    "profile": profile,
                    "encoder": scorer.config.encoder,
                },
            )
            write_json(
                tmp / "registry.json",
                {"name": params.scorer.registered_model_name, "version": str(version.version)},
            )
        metrics["registered_version"] = float(version.version)
        metrics = finite(metrics)
        mlflow.log_metrics(metrics)
        log.info("grm_scorer wrote %s: %s", out_dir, metrics)
        return metrics


def main(argv: list[str] | None = None) -> int:
    parser = step_parser(
        "components.grm_scorer scorer",
        "Train the scorer of step-by-step paths sampled from the policy; log it as an MLflow "
        "pyfunc and register grm-scorer@challenger.",
        GrmStep,
    )
    path_arguments(
        parser,
        "inputs",
        data=("data/reasoning", "grm_data's output: the reasoning questions"),
        policy=("models/grm_policy", "grm_policy's output: samples the paths to score"),
    )
    path_arguments(
        parser,
        "outputs",
        out=("models/grm_scorer", "the scorer (MLflow pyfunc scoring question, path rows)"),
        reports=(
            "reports/grm/scorer",
            "the scorer's training history (history.csv, validation.png)",
        ),
    )
    args = parser.parse_args(argv)
    return step_main(
        "grm_scorer",
        args,
        GrmStep,
        lambda p: run(p.grm, p.profile, args.data, args.policy, args.out, args.reports),
    )
