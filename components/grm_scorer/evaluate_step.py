"""grm_evaluate: every route on the eval questions, with costs; the tau sweep as an
accuracy-vs-generated-tokens frontier; AUROC of consensus for direct-answer correctness; the
scorer's best-of-K and ranking quality; then `champion` moves to the registered scorer if it
beats the current one.

Two measurements, named apart in the metrics:
- the replay (`<route>.*`, `sweep.*`): both decoding phases run once over all questions (M direct
  samples, K CoT paths) and every route reads what it needs from them (gating.py), so routes
  differ only in their decisions; its wall times are a batch's time split by tokens, so they
  follow tokens by construction. It gives the paired comparison of every route and the tau sweep.
- the live run (`live.egrm.*`): the gated model as it serves (inference.GatedGrm), CoT paths
  generated only for the questions below tau, timed end to end. Its model (policy + scorer + tau)
  is logged as an MLflow pyfunc and registered as `grm-egrm`; `champion` moves on a better live
  accuracy.

    python -m components.grm_scorer evaluate --data data/reasoning --policy models/grm_grpo \
        --scorer models/grm_scorer --reports reports/grm/evaluate"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import mlflow
import numpy as np

from components.common.cli import path_arguments, step_main, step_parser
from components.common.io import ProjectError, atomic_path, read_json, write_jsonl
from components.common.metrics import auroc
from components.common.models import load_causal_lm
from components.common.params import Profile
from components.common.plots import line_plot
from components.common.repro import seed_everything
from components.common.tracking import promote_if_better, register_and_promote, step_run
from components.grm_scorer import reasoning
from components.grm_scorer.consensus import consensus
from components.grm_scorer.cost import Sample, finite, summarize
from components.grm_scorer.decode import cot_samples, direct_samples
from components.grm_scorer.gating import ROUTES, Item, decide
from components.grm_scorer.inference import GatedGrm, batch_metrics
from components.grm_scorer.params import GrmParams, GrmStep
from components.grm_scorer.policy_step import paired_records
from components.grm_scorer.pyfunc import log_egrm
from components.grm_scorer.scorer import Scorer, load_scorer
from components.grm_scorer.scorer_step import cot_suffix_of
from components.grm_scorer.scorer_train import PathSet, selection_metrics

log = logging.getLogger(__name__)


@dataclass
class Decoded:
    """Both decoding phases on the eval questions, before any scorer is involved."""

    problems: list[reasoning.Problem]
    direct: list[list[Sample]]
    cot: list[list[Sample]]
    cot_texts: list[str]  # K per question, question-major


def decode_eval(
    policy_dir: Path, data_file: Path, params: GrmParams, limit: int | None = None
) -> Decoded:
    pairs = paired_records(data_file)[:limit]
    suffix = cot_suffix_of(pairs[0])
    problems = [reasoning.problem_of(p["direct"]) for p in pairs]
    questions = [p.question for p in problems]
    model, tokenizer = load_causal_lm(policy_dir)
    direct, _ = direct_samples(model, tokenizer, questions, params.gating, params.seed)
    cot, generations = cot_samples(model, tokenizer, questions, params.gating, params.seed, suffix)
    return Decoded(problems, direct, cot, generations.texts)


def score_items(decoded: Decoded, scorer: Scorer) -> tuple[list[Item], PathSet]:
    """Score every CoT path and attach the scoring cost; the PathSet carries graded labels."""
    k = len(decoded.cot[0])
    flat_questions = [p.question for p in decoded.problems for _ in range(k)]
    scores, wall = scorer.score(flat_questions, decoded.cot_texts)
    per_path_wall = wall / max(len(scores), 1)
    items, paths = [], PathSet()
    for index, problem in enumerate(decoded.problems):
        gold = problem.gold.lower()
        scored = []
        for j, sample in enumerate(decoded.cot[index]):
            text = decoded.cot_texts[index * k + j]
            scored.append(
                replace(
                    sample,
                    score=float(scores[index * k + j]),
                    score_flops=scorer.flops_per_path(problem.question, text),
                    score_wall_s=per_path_wall,
                )
            )
            quality = reasoning.path_quality(problem, text)
            paths.add(problem.question, text, quality, index, sample.answer, gold, True)
        items.append(Item(gold, problem.k, tuple(decoded.direct[index]), tuple(scored)))
    return items, paths


def route_metrics(
    items: Sequence[Item], tau: float, tau_sweep: Sequence[float]
) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for name in (*ROUTES, "best_of_k_oracle"):
        for key, value in summarize([decide(item, name, tau) for item in items]).items():
            metrics[f"{name}.{key}"] = value
    for t in tau_sweep:
        for name in ("gated_vote", "egrm"):
            for key, value in summarize([decide(item, name, t) for item in items]).items():
                metrics[f"sweep.{name}.tau{t:g}.{key}"] = value
    shares = [consensus([s.answer for s in item.direct]) for item in items]
    metrics["auroc.consensus_vs_mode"] = auroc(
        [c.share for c in shares],
        [c.answer == item.gold for c, item in zip(shares, items, strict=True)],
    )
    metrics["auroc.consensus_vs_greedy"] = auroc(
        [c.share for c in shares], [item.direct[0].answer == item.gold for item in items]
    )
    metrics["entropy_mean"] = float(np.mean([c.entropy for c in shares]))
    base = metrics["cot_vote.tokens_per_item"]
    metrics["egrm.token_ratio_vs_cot_vote"] = (
        metrics["egrm.tokens_per_item"] / base if base else math.nan
    )
    metrics["egrm.accuracy_gap_vs_cot_vote"] = (
        metrics["egrm.accuracy"] - metrics["cot_vote.accuracy"]
    )
    return metrics


def per_difficulty(items: Sequence[Item], tau: float) -> list[dict[str, Any]]:
    rows = []
    for k in sorted({item.difficulty for item in items}):
        subset = [item for item in items if item.difficulty == k]
        row: dict[str, Any] = {"k": k, "n": len(subset)}
        for name in ROUTES:
            outcomes = [decide(item, name, tau) for item in subset]
            row[f"{name}.accuracy"] = sum(o.correct for o in outcomes) / len(outcomes)
            row[f"{name}.trigger_rate"] = sum(o.route == "cot" for o in outcomes) / len(outcomes)
        rows.append(row)
    return rows


def frontier_plot(metrics: dict[str, float], tau_sweep: Sequence[float], path: Path) -> Path:
    series: dict[str, tuple[list[float], list[float]]] = {}
    for name, label in (("egrm", "E-GRM (gate + scorer)"), ("gated_vote", "gate + vote")):
        xs = [metrics[f"sweep.{name}.tau{t:g}.tokens_per_item"] for t in tau_sweep]
        ys = [metrics[f"sweep.{name}.tau{t:g}.accuracy"] for t in tau_sweep]
        series[label] = (xs, ys)
    for name, label in (
        ("always_direct", "always direct"),
        ("cot_vote", "always CoT + vote"),
        ("cot_scorer", "always CoT + scorer"),
    ):
        series[label] = ([metrics[f"{name}.tokens_per_item"]], [metrics[f"{name}.accuracy"]])
    return line_plot(
        series,
        path,
        title=f"accuracy vs generated tokens (tau in {list(tau_sweep)})",
        xlabel="generated tokens per item",
        ylabel="accuracy",
    )


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with atomic_path(path) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def frontier_rows(metrics: dict[str, float], tau_sweep: Sequence[float]) -> list[dict[str, Any]]:
    """One row per swept tau: accuracy, tokens and CoT rate of the two gated routes."""
    return [
        {
            "tau": t,
            **{
                f"{name}.{key}": metrics[f"sweep.{name}.tau{t:g}.{key}"]
                for name in ("gated_vote", "egrm")
                for key in ("accuracy", "tokens_per_item", "trigger_rate")
            },
        }
        for t in tau_sweep
    ]


def write_reports(
    report_dir: Path, items: Sequence[Item], metrics: dict[str, float], params: GrmParams
) -> None:
    """per_k.csv, frontier.csv and .png (logged to MLflow), and every item's answers and scores."""
    tau_sweep = params.evaluate.tau_sweep
    write_csv(report_dir / "per_k.csv", per_difficulty(items, params.gating.tau))
    write_csv(report_dir / "frontier.csv", frontier_rows(metrics, tau_sweep))
    write_jsonl(
        report_dir / "items.jsonl",
        [
            {
                "gold": item.gold,
                "k": item.difficulty,
                "direct": [s.answer for s in item.direct],
                "cot": [s.answer for s in item.cot],
                "scores": [round(s.score, 4) for s in item.cot],
            }
            for item in items
        ],
    )
    png = frontier_plot(metrics, tau_sweep, report_dir / "frontier.png")
    mlflow.log_artifact(str(png), artifact_path="plots")


def live_egrm(
    policy_dir: Path, scorer_dir: Path, problems: Sequence[reasoning.Problem], params: GrmParams
) -> dict[str, float]:
    """The gated model on the eval questions, as it serves: live.egrm.* metrics."""
    grm = GatedGrm.load(policy_dir, scorer_dir, params.gating, params.seed)
    batch = grm.answer([p.question for p in problems])
    return batch_metrics(batch, [p.gold.lower() for p in problems], "live.egrm")


def register_egrm(
    policy_dir: Path, scorer_dir: Path, params: GrmParams, accuracy: float
) -> dict[str, float]:
    """Log policy + scorer + gate as the E-GRM pyfunc, register it, promote on live accuracy."""
    uri = log_egrm(policy_dir, scorer_dir, params.gating, params.seed)
    registered = register_and_promote(
        uri,
        params.evaluate.egrm_model_name,
        "live.egrm.accuracy",
        accuracy,
        tags={"tau": params.gating.tau, "m": params.gating.m, "k": params.gating.k},
    )
    return {f"live.egrm.{key}": value for key, value in registered.items()}


def run(
    params: GrmParams,
    profile: Profile,
    data_dir: Path,
    policy_dir: Path,
    scorer_dir: Path,
    report_dir: Path,
) -> dict[str, float]:
    seed_everything(params.seed)
    settings = params.evaluate
    with step_run("grm_evaluate", profile, settings):
        decoded = decode_eval(policy_dir, data_dir / "eval.jsonl", params, settings.max_questions)
        items, paths = score_items(decoded, load_scorer(scorer_dir))
        metrics = route_metrics(items, params.gating.tau, settings.tau_sweep)
        scores = np.asarray([s.score for item in items for s in item.cot])
        metrics |= {f"eval.{k}": v for k, v in selection_metrics(paths, scores).items()}
        metrics["questions"] = float(len(items))
        metrics |= live_egrm(policy_dir, scorer_dir, decoded.problems, params)
        if settings.promote_metric not in metrics:
            raise ProjectError(
                f"unknown metric {settings.promote_metric!r}; have e.g. egrm.accuracy",
                field="grm.evaluate.promote_metric",
            )
        write_reports(report_dir, items, metrics, params)
        value = metrics[settings.promote_metric]
        metrics = finite(metrics)
        mlflow.log_metrics(metrics)

        registry = read_json(scorer_dir / "registry.json")
        promoted = promote_if_better(
            registry["name"],
            registry["version"],
            settings.promote_metric,
            value,
            settings.greater_is_better,
        )
        metrics["promoted"] = float(promoted)
        metrics |= register_egrm(policy_dir, scorer_dir, params, metrics["live.egrm.accuracy"])
        log.info(
            "grm_evaluate: %s", {k: v for k, v in metrics.items() if not k.startswith("sweep")}
        )
        return metrics


def main(argv: list[str] | None = None) -> int:
    parser = step_parser(
        "components.grm_scorer evaluate",
        "Every route (always-direct, always-CoT with vote or scorer, gating, E-GRM), the tau "
        "sweep and the consensus AUROC; move grm-scorer@champion on a better best-of-K.",
        GrmStep,
    )
    path_arguments(
        parser,
        "inputs",
        data=("data/reasoning", "grm_data's output: the reasoning questions"),
        policy=("models/grm_grpo", "grm_grpo's output: the policy (the SFT one at steps 0)"),
        scorer=("models/grm_scorer", "grm_scorer's output: picks the best step-by-step path"),
    )
    path_arguments(
        parser,
        "outputs",
        reports=(
            "reports/grm/evaluate",
            "accuracy and cost of every route and tau (per_k.csv, frontier.csv/png), items.jsonl",
        ),
    )
    args = parser.parse_args(argv)
    return step_main(
        "grm_evaluate",
        args,
        GrmStep,
        lambda p: run(p.grm, p.profile, args.data, args.policy, args.scorer, args.reports),
    )
