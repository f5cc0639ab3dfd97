"""The E-GRM comparison on the tiny profile (docs/results/egrm.md), one command:

    python -m components.grm_scorer.compare --seeds 0 1 2 [--smollm2 30]

Per seed (data, policy and sampling all seeded): the grm_data and grm_policy steps' `run()` with
the comparison's settings (COMPARE_OVERRIDES on top of params.yaml), the policy's CoT paths on the
scorer questions, three scorers trained on those same paths (hybrid, MSE-only, hinge-only), one
decoding of the eval questions shared by every route and every scorer, then all route metrics,
the tau sweep and AUROC. Work files and a private MLflow store go under --work; results go to
--out as JSON, tables and plots, and `report.write_report` renders the markdown."""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from components.common.io import read_json, write_json
from components.common.repro import seed_everything
from components.grm_scorer import data_step, policy_step
from components.grm_scorer.eval_step import (
    decode_eval,
    per_difficulty,
    route_metrics,
    score_items,
)
from components.grm_scorer.params import GrmParams, ScorerParams
from components.grm_scorer.scorer import build_scorer, save_scorer
from components.grm_scorer.scorer_step import policy_path_set
from components.grm_scorer.scorer_train import fit_scorer, selection_metrics, split_groups
from pipelines.params import ProjectParams, load_project_params

log = logging.getLogger(__name__)

# The comparison's own settings (params.yaml's defaults stay small for `make repro`).
COMPARE_OVERRIDES = [
    "profile=tiny",
    # three layers: with two, the policy's CoT misreads which term comes next (wrong operands)
    # more often than its direct answers are wrong, the reverse of the regime E-GRM targets
    "grm.policy.tiny={hidden_size: 96, intermediate_size: 192, num_hidden_layers: 3, "
    "num_attention_heads: 4, max_position_embeddings: 128}",
    "reward_data.train_questions=5000",
    "reward_data.scorer_questions=400",
    "reward_data.eval_questions=300",
    "grm.policy.base.max_steps=800",
    "grm.policy.sft.max_steps=200",
    "grm.scorer.epochs=10",
    "grm.scorer.patience=3",
]
VARIANTS: dict[str, dict[str, Any]] = {
    "hybrid": {"w_reg": 0.7, "w_rank": 0.3, "regression": "huber"},
    "mse": {"w_reg": 1.0, "w_rank": 0.0, "regression": "mse"},
    "hinge": {"w_reg": 0.0, "w_rank": 1.0, "regression": "huber"},
}


def variant_params(scorer: ScorerParams, variant: str) -> ScorerParams:
    loss = scorer.loss.model_copy(update=VARIANTS[variant])
    return scorer.model_copy(update={"loss": loss})


def run_seed(
    params: ProjectParams, work: Path, reuse: bool, alt_encoders: Sequence[str] = ()
) -> dict[str, Any]:
    """Everything for one seed; returns {"routes": ..., "scorers": {variant: ...}, ...}.
    `alt_encoders`: also train the hybrid scorer on other encoders (same paths) for comparison."""
    grm: GrmParams = params.grm
    seed_everything(grm.seed)
    data_dir, policy_dir = work / "data", work / "policy"
    timings: dict[str, float] = {}
    start = time.perf_counter()
    if not (reuse and (data_dir / "eval.jsonl").is_file()):
        data_step.run(params.reward_data, params.profile, data_dir, work / "reports/data")
    if not (reuse and (policy_dir / "config.json").is_file()):
        policy_metrics = policy_step.run(
            grm, params.model, params.profile, data_dir, policy_dir, work / "reports/policy"
        )
        write_json(work / "policy_metrics.json", policy_metrics)
    timings["data_and_policy_s"] = time.perf_counter() - start

    start = time.perf_counter()
    paths, suffix = policy_path_set(
        policy_dir, data_dir / "scorer.jsonl", grm.gating, grm.scorer, grm.seed
    )
    train, val = split_groups(paths, grm.scorer.val_fraction, grm.seed)
    decoded = decode_eval(policy_dir, data_dir / "eval.jsonl", grm)
    timings["decode_s"] = time.perf_counter() - start

    result: dict[str, Any] = {"scorers": {}, "policy": read_json(work / "policy_metrics.json")}
    for variant in VARIANTS:
        start = time.perf_counter()
        scorer_params = variant_params(grm.scorer, variant)
        seed_everything(grm.seed)  # same head init whether or not data and policy were reused
        scorer = build_scorer(scorer_params, policy_dir, suffix)
        best_val, _ = fit_scorer(scorer, train, val, scorer_params, grm.seed)
        save_scorer(scorer, work / f"scorer_{variant}")
        items, eval_paths = score_items(decoded, scorer)
        scores = [s.score for item in items for s in item.cot]
        routes = route_metrics(items, grm.gating.tau, grm.evaluate.tau_sweep)
        result["scorers"][variant] = {
            **{f"eval.{k}": v for k, v in selection_metrics(eval_paths, _array(scores)).items()},
            **best_val,
        }
        if variant == "hybrid":
            result["routes"] = routes
            result["per_k"] = per_difficulty(items, grm.gating.tau)
        timings[f"scorer_{variant}_s"] = time.perf_counter() - start
    for encoder in alt_encoders:  # "minilm", "policy" or e.g. "policy:logprob"
        start = time.perf_counter()
        kind, _, pooling = encoder.partition(":")
        scorer_params = ScorerParams.model_validate(
            grm.scorer.model_dump() | {"encoder": kind, "pooling": pooling or "mean"}
        )
        seed_everything(grm.seed)
        scorer = build_scorer(scorer_params, policy_dir, suffix)
        best_val, _ = fit_scorer(scorer, train, val, scorer_params, grm.seed)
        items, eval_paths = score_items(decoded, scorer)
        scores = [s.score for item in items for s in item.cot]
        result.setdefault("encoders", {})[encoder] = {
            **{f"eval.{k}": v for k, v in selection_metrics(eval_paths, _array(scores)).items()},
            **best_val,
        }
        timings[f"encoder_{encoder}_s"] = time.perf_counter() - start
    result["paths"] = {
        "policy_fully_correct": _mean(
            [q == 1.0 for q, own in zip(paths.labels, paths.from_policy, strict=True) if own]
        ),
        "train_rows": len(train.labels),
    }
    result["timings"] = timings
    return result


def seed_job(
    params_path: Path,
    overrides: list[str],
    seed: int,
    work: Path,
    reuse: bool,
    alt_encoders: Sequence[str],
    threads: int,
) -> dict[str, Any]:
    """One seed, with its own MLflow store (parallel seeds must not share one SQLite file)."""
    import torch

    torch.set_num_threads(threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    work.mkdir(parents=True, exist_ok=True)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{(work / 'mlflow.db').resolve()}"
    params = load_project_params(
        params_path, [*overrides, f"reward_data.seed={seed}", f"grm.seed={seed}"]
    )
    return run_seed(params, work, reuse, alt_encoders)


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _array(values):
    import numpy as np

    return np.asarray(values, dtype=float)


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components.grm_scorer.compare")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--work", type=Path, default=Path(".cache/egrm_compare"))
    parser.add_argument("--out", type=Path, default=Path("docs/results"))
    parser.add_argument("--reuse", action="store_true", help="keep a seed's data and policy")
    parser.add_argument("--jobs", type=int, default=1, help="seeds run in parallel processes")
    parser.add_argument(
        "--smollm2", type=int, default=0, help="also gate N questions with the real SmolLM2"
    )
    parser.add_argument(
        "--alt-encoders",
        nargs="*",
        default=[],
        help="every seed: the hybrid scorer on these encoders too (encoder[:pooling], "
        "e.g. minilm policy policy:logprob)",
    )
    parser.add_argument("--report-only", action="store_true", help="re-render from saved JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    from components.grm_scorer.report import write_report

    results_file = args.out / "egrm_results.json"
    if args.report_only:
        write_report(read_json(results_file), args.out)
        return 0
    overrides = [*COMPARE_OVERRIDES, *args.overrides]
    results: dict[str, Any] = {"overrides": overrides, "seeds": {}}
    jobs = [
        (
            args.params,
            overrides,
            seed,
            args.work / f"seed{seed}",
            args.reuse,
            tuple(args.alt_encoders),
            1 if args.jobs > 1 else torch_threads(),
        )
        for seed in args.seeds
    ]
    if args.jobs > 1:  # seeds in parallel processes (spawned: no forked torch state)
        with ProcessPoolExecutor(
            args.jobs, mp_context=multiprocessing.get_context("spawn")
        ) as pool:
            futures = [pool.submit(seed_job, *job) for job in jobs]
            for seed, future in zip(args.seeds, futures, strict=True):
                results["seeds"][str(seed)] = future.result()
    else:
        for seed, job in zip(args.seeds, jobs, strict=True):
            results["seeds"][str(seed)] = seed_job(*job)
            write_json(results_file, results)  # partial results survive an interrupted run
    if args.smollm2:
        from components.grm_scorer.real_model import smollm2_gating

        params = load_project_params(args.params, overrides)
        results["smollm2"] = smollm2_gating(params, args.smollm2)
    results["settings"] = load_project_params(args.params, overrides).grm.model_dump(mode="json")
    write_json(results_file, results)
    write_report(results, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
