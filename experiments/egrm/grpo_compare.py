"""E-GRM stage 2 and its ablation on the tiny profile (the `grpo` section of
docs/results/egrm.md), one command:

    python -m experiments.egrm.grpo_compare --seeds 0 1 2

Per seed, on the comparison's data and SFT policy (compare.COMPARE_OVERRIDES, the same seeds as
experiments.egrm.compare): the hybrid scorer trained on the SFT policy's paths, then three arms on
that same SFT policy: SFT only, + pairwise-reward GRPO (E-GRM stage 2), + vanilla GRPO
(correctness reward), each through the grm_grpo step's `run()`. Every arm is evaluated on the
same eval questions with the same scorer and seeds: CoT path accuracy (all K paths), greedy
direct accuracy, end-to-end E-GRM accuracy and tokens. Results go to
docs/results/egrm_grpo_results.json; `experiments.egrm.grpo_report` renders the section."""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path
from typing import Any

from components.common.io import read_json, write_json
from components.common.repro import seed_everything
from components.grm_scorer import grpo_step
from components.grm_scorer.evaluate_step import decode_eval, route_metrics, score_items
from components.grm_scorer.scorer import build_scorer, save_scorer
from components.grm_scorer.scorer_step import policy_path_set
from components.grm_scorer.scorer_train import fit_scorer, split_groups
from experiments.egrm.compare import COMPARE_OVERRIDES, data_and_policy
from experiments.egrm.grpo_report import write_grpo_report
from pipelines.params import ProjectParams, load_project_params

log = logging.getLogger(__name__)

# the study's GRPO setting (params.yaml keeps grpo.steps = 0 for `make repro`)
GRPO_OVERRIDES = ["grm.grpo.steps=100"]
ARMS = {"sft": None, "pairwise": "pairwise", "vanilla": "vanilla"}


def arm_metrics(params: ProjectParams, policy_dir: Path, data_dir: Path, scorer: Any) -> dict:
    """One policy on the eval questions: its paths, its direct answers and the E-GRM route."""
    grm = params.grm
    decoded = decode_eval(policy_dir, data_dir / "eval.jsonl", grm)
    items, _ = score_items(decoded, scorer)
    routes = route_metrics(items, grm.gating.tau, grm.evaluate.tau_sweep)
    golds = [p.gold.lower() for p in decoded.problems]
    paths = [s.answer == g for row, g in zip(decoded.cot, golds, strict=True) for s in row]
    keep = ("always_direct", "cot_vote", "cot_scorer", "egrm")
    return {
        "cot_path_accuracy": sum(paths) / len(paths),
        **{k: v for k, v in routes.items() if k.split(".")[0] in keep},
    }


def run_seed(params: ProjectParams, work: Path) -> dict[str, Any]:
    grm = params.grm
    data_dir, policy_dir = data_and_policy(params, work, reuse=True)
    seed_everything(grm.seed)
    paths, suffix = policy_path_set(
        policy_dir, data_dir / "scorer.jsonl", grm.gating, grm.scorer, grm.seed
    )
    scorer = build_scorer(grm.scorer, policy_dir, suffix)
    fit_scorer(
        scorer, *split_groups(paths, grm.scorer.val_fraction, grm.seed), grm.scorer, grm.seed
    )
    scorer_dir = work / "scorer_hybrid"
    save_scorer(scorer, scorer_dir)
    arms: dict[str, Any] = {}
    for arm, reward in ARMS.items():
        arm_dir, result = policy_dir, {}
        if reward is not None:
            arm_params = grm.model_copy(
                update={"grpo": grm.grpo.model_copy(update={"reward": reward})}
            )
            arm_dir, start = work / f"grpo_{arm}", time.perf_counter()
            reports = work / f"reports/grpo_{arm}"
            result["grpo"] = grpo_step.run(
                arm_params, params.profile, data_dir, policy_dir, scorer_dir, arm_dir, reports
            )
            result["grpo_wall_s"] = time.perf_counter() - start
        result |= arm_metrics(params, arm_dir, data_dir, scorer)
        arms[arm] = result
        log.info("seed %s arm %s: %s", grm.seed, arm, result)
    return {"arms": arms}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m experiments.egrm.grpo_compare")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--work", type=Path, default=Path(".cache/egrm_grpo"))
    parser.add_argument("--out", type=Path, default=Path("docs/results"))
    parser.add_argument(
        "--name", default="grpo", help="results egrm_<name>_results.json and page section <name>"
    )
    parser.add_argument("--report-only", action="store_true", help="re-render from saved JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    results_file = args.out / f"egrm_{args.name}_results.json"
    if args.report_only:
        write_grpo_report(read_json(results_file), args.out / "egrm.md", args.name)
        return 0
    overrides = [*COMPARE_OVERRIDES, *GRPO_OVERRIDES, *args.overrides]
    params = load_project_params(args.params, overrides)
    results: dict[str, Any] = {
        "overrides": overrides,
        "settings": params.grm.grpo.model_dump(mode="json"),
        "seeds": {},
    }
    for seed in args.seeds:
        work = args.work / f"seed{seed}"
        work.mkdir(parents=True, exist_ok=True)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{(work / 'mlflow.db').resolve()}"
        seeded = load_project_params(
            args.params, [*overrides, f"grm_data.seed={seed}", f"grm.seed={seed}"]
        )
        results["seeds"][str(seed)] = run_seed(seeded, work)
        write_json(results_file, results)  # partial results survive a stop
    write_grpo_report(results, args.out / "egrm.md", args.name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
