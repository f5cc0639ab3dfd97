"""E-GRM's real gated inference against always-CoT voting and always-direct, measured live in one
run: same questions, same policy and scorer, interleaved repetitions (the order of the three
routes rotates every repetition, so machine noise and cache warmth fall on all of them), ratios
against always-CoT within each repetition.

- E-GRM (`inference.GatedGrm.answer`): M direct samples of every question in one batched call,
  consensus, K CoT paths only for the questions below tau (a second batched call), the scorer
  picks; timed end to end, scoring included.
- always-CoT voting: K CoT paths for every question (one batched call) and a majority vote.
- always-direct: one greedy decoding per question.

Sampling is seeded per row (sampling.py), so every repetition gives the same answers and tokens
(checked); only wall time varies. Accuracy CIs are Wilson intervals over the questions, wall time
CIs t intervals over the repetitions (experiments/stats.py).

    nice -n 10 python -m bench.egrm_gated            # reads make repro's data/ and models/
    python -m bench.egrm_gated --data D --policy P --scorer S --reps 5

Writes bench/results/egrm_gated.json and .md, one entry per `--setup` (a policy/scorer pair):
`repro` is make repro's, `compare` the comparison's seed-0 settings (experiments/egrm/compare.py's
COMPARE_OVERRIDES through the three stages' CLIs)."""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path
from typing import Any

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `python bench/egrm_gated.py`
    sys.path.insert(0, str(REPO_ROOT))

from components.common.io import ProjectError, read_json, write_json  # noqa: E402
from components.grm_scorer import reasoning  # noqa: E402
from components.grm_scorer.inference import Batch, GatedGrm  # noqa: E402
from components.grm_scorer.policy_step import paired_records  # noqa: E402
from experiments.egrm.report import live_table  # noqa: E402
from experiments.stats import (  # noqa: E402
    Interval,
    mean_ci,
    paired_difference_ci,
    threshold_verdict,
    wilson_ci,
)
from pipelines.params import load_project_params  # noqa: E402

RESULTS = REPO_ROOT / "bench" / "results"
ROUTES = {
    "egrm": GatedGrm.answer,
    "cot_vote": GatedGrm.always_cot_vote,
    "always_direct": GatedGrm.always_direct,
}
BASELINE = "cot_vote"
# the spec's V1 target: E-GRM costs at most 0.6x always-CoT voting
TARGET_RATIO = 0.6
# and loses at most 1 point of accuracy against it
ACCURACY_MARGIN = 1.0


def eval_problems(data_dir: Path, limit: int | None) -> list[reasoning.Problem]:
    file = data_dir / "eval.jsonl"
    if not file.is_file():
        raise ProjectError(
            "no eval questions: run `dvc repro grm_scorer` or pass --data", file=file
        )
    return [reasoning.problem_of(p["direct"]) for p in paired_records(file)][:limit]


def run_route(grm: GatedGrm, name: str, questions: list[str]) -> Batch:
    return ROUTES[name](grm, questions)


def measure(grm: GatedGrm, problems: list[reasoning.Problem], reps: int) -> dict[str, Any]:
    """Every route `reps` times, rotating their order; per repetition wall seconds and tokens,
    and each route's answers (identical across repetitions, which is checked)."""
    questions = [p.question for p in problems]
    for name in ROUTES:  # warm-up: first calls allocate caches and pick kernels
        run_route(grm, name, questions[:8])
    names = list(ROUTES)
    walls: dict[str, list[float]] = {name: [] for name in names}
    answers: dict[str, list[dict[str, Any]]] = {}
    for rep in range(reps):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for name in order:
            batch = run_route(grm, name, questions)
            walls[name].append(batch.wall_s)
            rows = [vars(a) for a in batch.answers]
            if answers.setdefault(name, rows) != rows:
                raise RuntimeError(f"{name}: answers changed between repetitions")
    return {"wall_s": walls, "answers": answers}


def summarize(problems: list[reasoning.Problem], measured: dict[str, Any]) -> dict[str, Any]:
    golds = [p.gold.lower() for p in problems]
    n = len(problems)
    walls = measured["wall_s"]
    summary: dict[str, Any] = {}
    right = {
        name: [100.0 * (r["answer"] == g) for r, g in zip(rows, golds, strict=True)]
        for name, rows in measured["answers"].items()
    }
    for name, rows in measured["answers"].items():
        correct = round(sum(right[name]) / 100)
        accuracy = wilson_ci(correct, n)
        # paired by question: t interval of the per-question differences of 0/100 correctness
        gap = paired_difference_ci(right[name], right[BASELINE])
        wall_ms = mean_ci([1000 * w / n for w in walls[name]])
        tokens = sum(r["tokens"] for r in rows) / n
        wall_ratio = mean_ci([w / b for w, b in zip(walls[name], walls[BASELINE], strict=True)])
        summary[name] = {
            "correct": correct,
            "accuracy": [accuracy.estimate, accuracy.low, accuracy.high],
            "tokens_per_question": tokens,
            "wall_ms_per_question": [wall_ms.estimate, wall_ms.low, wall_ms.high],
            "wall_ratio_vs_cot_vote": [wall_ratio.estimate, wall_ratio.low, wall_ratio.high],
            "token_ratio_vs_cot_vote": tokens
            / (sum(r["tokens"] for r in measured["answers"][BASELINE]) / n),
            "trigger_rate": sum(r["route"] == "cot" for r in rows) / n,
            "accuracy_gap_vs_cot_vote": [gap.estimate, gap.low, gap.high],
        }
    egrm = summary["egrm"]
    ratio = Interval(*egrm["wall_ratio_vs_cot_vote"])
    egrm["wall_verdict"] = threshold_verdict(ratio, TARGET_RATIO, greater=False)
    egrm["tokens_target_met"] = egrm["token_ratio_vs_cot_vote"] <= TARGET_RATIO
    egrm["accuracy_verdict"] = threshold_verdict(
        Interval(*egrm["accuracy_gap_vs_cot_vote"]), -ACCURACY_MARGIN
    )
    return summary


def render(results: dict[str, Any]) -> str:
    return "\n".join(
        [
            "# E-GRM: real gated inference vs always-CoT voting and always-direct",
            "",
            *live_table(results),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.egrm_gated")
    parser.add_argument("--params", type=Path, default=REPO_ROOT / "params.yaml")
    parser.add_argument("--data", type=Path, default=REPO_ROOT / "data" / "reasoning")
    parser.add_argument("--policy", type=Path, default=REPO_ROOT / "models" / "grm_policy")
    parser.add_argument("--scorer", type=Path, default=REPO_ROOT / "models" / "grm_scorer")
    parser.add_argument("--questions", type=int, default=None, help="default: every eval one")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (shared machine)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--setup", default="repro", help="name of this policy/scorer pair in the results"
    )
    parser.add_argument(
        "--about",
        default="the policy and scorer `make repro` trains (params.yaml)",
        help="where the policy and scorer come from, for the results",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    params = load_project_params(args.params).grm
    problems = eval_problems(args.data, args.questions)
    grm = GatedGrm.load(args.policy, args.scorer, params.gating, params.seed)
    measured = measure(grm, problems, args.reps)
    results = {
        "about": args.about,
        "policy": str(args.policy),
        "scorer": str(args.scorer),
        "questions": len(problems),
        "reps": args.reps,
        "tau": params.gating.tau,
        "m": params.gating.m,
        "k": params.gating.k,
        "seed": params.seed,
        "target_ratio": TARGET_RATIO,
        "accuracy_margin": ACCURACY_MARGIN,
        "machine": f"{platform.machine()}, torch threads {torch.get_num_threads()}",
        "summary": summarize(problems, measured),
        "wall_s": measured["wall_s"],
    }
    # one entry per setup: a run replaces its own and keeps the others
    file = args.out / "egrm_gated.json"
    everything = read_json(file) if file.is_file() else {"setups": {}}
    everything["setups"][args.setup] = results
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(file, everything)
    (args.out / "egrm_gated.md").write_text(render(everything) + "\n")
    print(render(everything))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
