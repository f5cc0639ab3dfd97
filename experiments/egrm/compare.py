"""The E-GRM comparison on the tiny profile (docs/results/egrm.md), one command:

    python -m experiments.egrm.compare --seeds 0 1 2 [--smollm2 30]

Per seed (data, policy and sampling all seeded): the grm_data and grm_policy steps' `run()` with
the comparison's settings (COMPARE_OVERRIDES on top of params.yaml), the policy's CoT paths on the
scorer questions, three scorers trained on those same paths (hybrid, MSE-only, hinge-only), one
decoding of the eval questions shared by every route and every scorer, then all route metrics,
the tau sweep and AUROC. Work files and a private MLflow store go under --work; results go to
--out as JSON, and `experiments.egrm.report` renders the page and its plot."""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from components.common.io import read_json, write_json
from components.common.repro import seed_everything
from components.grm_scorer import data_step, policy_step
from components.grm_scorer.evaluate_step import (
    Decoded,
    decode_eval,
    per_difficulty,
    route_metrics,
    score_items,
)
from components.grm_scorer.gating import Item
from components.grm_scorer.params import GrmParams, ScorerParams
from components.grm_scorer.scorer import build_scorer, save_scorer
from components.grm_scorer.scorer_step import policy_path_set
from components.grm_scorer.scorer_train import (
    PathSet,
    fit_scorer,
    selection_metrics,
    split_groups,
)
from experiments.egrm.report import write_report
from pipelines.params import ProjectParams, load_project_params

log = logging.getLogger(__name__)

# The comparison's own settings (params.yaml's defaults stay small for `make repro`).
COMPARE_OVERRIDES = [
    "profile=tiny",
    # three layers: with two, the policy's CoT misreads which term comes next (wrong operands)
    # more often than its direct answers are wrong, the reverse of the regime E-GRM targets
    "grm.policy.tiny={hidden_size: 96, intermediate_size: 192, num_hidden_layers: 3, "
    "num_attention_heads: 4, max_position_embeddings: 128}",
    # params.yaml's demo draws 2-4 terms (bench/demo_sweep.py); the comparison keeps its own 2-7
    "grm_data.max_terms=7",
    "grm_data.train_questions=5000",
    "grm_data.scorer_questions=400",
    "grm_data.eval_questions=300",
    "grm.policy.base.max_steps=800",
    "grm.policy.sft.max_steps=200",
    "grm.scorer.epochs=10",
    "grm.scorer.patience=3",
]
# the live measurement of the gated model (python -m bench.egrm_gated), shown on the page
LIVE_RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results" / "egrm_gated.json"
VARIANTS: dict[str, dict[str, Any]] = {
    "hybrid": {"w_reg": 0.7, "w_rank": 0.3, "regression": "huber"},
    "mse": {"w_reg": 1.0, "w_rank": 0.0, "regression": "mse"},
    "hinge": {"w_reg": 0.0, "w_rank": 1.0, "regression": "huber"},
}


def variant_params(scorer: ScorerParams, variant: str) -> ScorerParams:
    loss = scorer.loss.model_copy(update=VARIANTS[variant])
    return scorer.model_copy(update={"loss": loss})


@contextmanager
def timed(timings: dict[str, float], name: str) -> Iterator[None]:
    """Wall seconds of the block into timings[name]."""
    start = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - start


def data_and_policy(params: ProjectParams, work: Path, reuse: bool) -> tuple[Path, Path]:
    """The grm_data and grm_policy steps into `work` (kept from a previous run with `reuse`)."""
    data_dir, policy_dir = work / "data", work / "policy"
    if not (reuse and (data_dir / "eval.jsonl").is_file()):
        data_step.run(params.grm_data, params.profile, data_dir, work / "reports/data")
    if not (reuse and (policy_dir / "config.json").is_file()):
        policy_metrics = policy_step.run(
            params.grm, params.model, params.profile, data_dir, policy_dir, work / "reports/policy"
        )
        write_json(work / "policy_metrics.json", policy_metrics)
    return data_dir, policy_dir


def evaluate_scorer(
    scorer_params: ScorerParams,
    grm: GrmParams,
    policy_dir: Path,
    suffix: str,
    splits: tuple[PathSet, PathSet],
    decoded: Decoded,
    save_to: Path | None = None,
) -> tuple[list[Item], dict[str, float]]:
    """Train one scorer on the shared paths (saved to `save_to`), score the shared eval decoding
    with it; returns the scored items and the selection metrics (eval.* and best validation)."""
    seed_everything(grm.seed)  # same head init whether or not data and policy were reused
    scorer = build_scorer(scorer_params, policy_dir, suffix)
    best_val, _ = fit_scorer(scorer, *splits, scorer_params, grm.seed)
    if save_to is not None:
        save_scorer(scorer, save_to)
    items, eval_paths = score_items(decoded, scorer)
    scores = np.asarray([s.score for item in items for s in item.cot], dtype=float)
    selection = {f"eval.{k}": v for k, v in selection_metrics(eval_paths, scores).items()}
    return items, {**selection, **best_val}


def encoder_params(scorer: ScorerParams, encoder: str) -> ScorerParams:
    """`encoder[:pooling]`, e.g. "minilm", "policy" or "policy:logprob"."""
    kind, _, pooling = encoder.partition(":")
    return ScorerParams.model_validate(
        scorer.model_dump() | {"encoder": kind, "pooling": pooling or "mean"}
    )


def run_seed(
    params: ProjectParams, work: Path, reuse: bool, alt_encoders: Sequence[str] = ()
) -> dict[str, Any]:
    """Everything for one seed; returns {"routes": ..., "scorers": {variant: ...}, ...}.
    `alt_encoders`: also train the hybrid scorer on other encoders (same paths) for comparison."""
    grm: GrmParams = params.grm
    seed_everything(grm.seed)
    timings: dict[str, float] = {}
    with timed(timings, "data_and_policy_s"):
        data_dir, policy_dir = data_and_policy(params, work, reuse)
    with timed(timings, "decode_s"):
        paths, suffix = policy_path_set(
            policy_dir, data_dir / "scorer.jsonl", grm.gating, grm.scorer, grm.seed
        )
        splits = split_groups(paths, grm.scorer.val_fraction, grm.seed)
        decoded = decode_eval(policy_dir, data_dir / "eval.jsonl", grm)

    result: dict[str, Any] = {"scorers": {}, "policy": read_json(work / "policy_metrics.json")}
    for variant in VARIANTS:
        with timed(timings, f"scorer_{variant}_s"):
            items, result["scorers"][variant] = evaluate_scorer(
                variant_params(grm.scorer, variant),
                grm,
                policy_dir,
                suffix,
                splits,
                decoded,
                save_to=work / f"scorer_{variant}",
            )
            if variant == "hybrid":  # the routes read the default scorer's choices
                result["routes"] = route_metrics(items, grm.gating.tau, grm.evaluate.tau_sweep)
                result["per_k"] = per_difficulty(items, grm.gating.tau)
    for encoder in alt_encoders:
        with timed(timings, f"encoder_{encoder}_s"):
            _, result.setdefault("encoders", {})[encoder] = evaluate_scorer(
                encoder_params(grm.scorer, encoder), grm, policy_dir, suffix, splits, decoded
            )
    own = [q == 1.0 for q, mine in zip(paths.labels, paths.from_policy, strict=True) if mine]
    result["paths"] = {
        "policy_fully_correct": sum(own) / len(own) if own else float("nan"),
        "train_rows": len(splits[0].labels),
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
        params_path, [*overrides, f"grm_data.seed={seed}", f"grm.seed={seed}"]
    )
    return run_seed(params, work, reuse, alt_encoders)


def run_seeds(args: argparse.Namespace, overrides: list[str], results: dict[str, Any]) -> None:
    """Every seed into results["seeds"]; in parallel processes with --jobs above 1."""
    import torch

    threads = 1 if args.jobs > 1 else torch.get_num_threads()
    jobs = {
        seed: (
            args.params,
            overrides,
            seed,
            args.work / f"seed{seed}",
            args.reuse,
            tuple(args.alt_encoders),
            threads,
        )
        for seed in args.seeds
    }
    if args.jobs > 1:  # spawned, so no forked torch state
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
            futures = {seed: pool.submit(seed_job, *job) for seed, job in jobs.items()}
            for seed, future in futures.items():
                results["seeds"][str(seed)] = future.result()
        return
    for seed, job in jobs.items():
        results["seeds"][str(seed)] = seed_job(*job)
        write_json(args.out / "egrm_results.json", results)  # partial results survive a stop


def live_results() -> dict[str, Any] | None:
    """bench/egrm_gated.py's measurement of the gated model, when it has been run."""
    return read_json(LIVE_RESULTS) if LIVE_RESULTS.is_file() else None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m experiments.egrm.compare")
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
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    results_file = args.out / "egrm_results.json"
    if args.report_only:
        write_report(read_json(results_file), args.out, live_results())
        return 0
    overrides = [*COMPARE_OVERRIDES, *args.overrides]
    results: dict[str, Any] = {"overrides": overrides, "seeds": {}}
    run_seeds(args, overrides, results)
    params = load_project_params(args.params, overrides)
    if args.smollm2:
        from experiments.egrm.real_model import smollm2_gating

        results["smollm2"] = smollm2_gating(params, args.smollm2)
    results["settings"] = params.grm.model_dump(mode="json")
    write_json(results_file, results)
    write_report(results, args.out, live_results())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
