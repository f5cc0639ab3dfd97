"""Regimes where full SFT suffers (issue 17), chosen before EPI is run on them.

The mixed benchmark of experiments/epi/run.py shows positive transfer, so it cannot test whether
EPI reduces interference. This module first *chooses* a regime on its own seeds with `full` SFT
only (the candidates, seeds and rule are fixed in docs/results/epi_regimes/preregistration.json,
committed before any run), then compares the 7 methods on fresh seeds:

    python -m experiments.epi.regimes choice                       # full SFT only, seeds 100-102
    python -m experiments.epi.regimes compare --regime retain --seeds 0   # one seed per process
    python -m experiments.epi.regimes report                       # rewrite the page section

Candidates (tiny profile; data and base are built once per regime and shared by all seeds and
methods, the seed varies fine-tuning):
- retain: the base already knows something before our SFT (recall of 150 key→value pairs, taught
  in a knowledge stage of full SFT on the pretrained tiny model); the SFT trains new tasks
  (reverse, add) and we measure the known skill before and after: forgetting = before − after.
- conflict: the A-B/A-C paradigm: `recall` and `recall_alt` share their keys and input format and
  map every key to different values; multi-task full SFT against single-task SFT on each task.
- conflict_large: the same with 500 keys per table (capacity pressure)."""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path
from typing import Any

from components.common.io import read_json, read_jsonl, write_json, write_jsonl
from components.common.params import ModelParams
from components.data_prep.params import DataPrepParams
from components.data_prep.step import run as prepare
from components.epi_finetune.params import FinetuneParams
from components.epi_finetune.step import run as finetune
from components.pretrain.params import PretrainParams
from components.pretrain.step import run as pretrain
from experiments.epi.run import METHODS, merged

RESULTS = Path("docs/results/epi_regimes")
PREREGISTRATION = RESULTS / "preregistration.json"
EVAL_PER_TASK = 50
MAX_NEW_TOKENS = 16  # as the finetune step's accuracy monitor

REGIMES: dict[str, dict[str, Any]] = {
    "retain": {
        "data": {
            "tasks": ["recall", "reverse", "add"],
            "train_per_task": {"recall": 150, "reverse": 600, "add": 600},
            "task_stage": {"recall": 0, "reverse": 0, "add": 1},
        },
        # the knowledge stage: what the base knows before our SFT (full SFT, seed 0, shared)
        "known": {"tasks": ["recall"], "steps": 600},
        "sft_tasks": ["reverse", "add"],
        "steps": 1200,
    },
    "conflict": {
        "data": {
            "tasks": ["recall", "recall_alt"],
            "train_per_task": {"recall": 150, "recall_alt": 150},
            "task_stage": {"recall": 0, "recall_alt": 1},
        },
        "sft_tasks": ["recall", "recall_alt"],
        "steps": 1200,
    },
    "conflict_large": {
        "data": {
            "tasks": ["recall", "recall_alt"],
            "train_per_task": {"recall": 500, "recall_alt": 500},
            "task_stage": {"recall": 0, "recall_alt": 1},
            "n_recall_keys": 500,
        },
        "sft_tasks": ["recall", "recall_alt"],
        "steps": 1200,
    },
}


def subset(data_dir: Path, out: Path, train_tasks: list[str], eval_tasks: list[str]) -> Path:
    """A copy of the prepared data with only `train_tasks` trained and `eval_tasks` evaluated."""
    if not (out / "train.jsonl").is_file():
        train = read_jsonl(data_dir / "train.jsonl")
        evaluation = read_jsonl(data_dir / "eval.jsonl")
        write_jsonl(out / "train.jsonl", [r for r in train if r["task"] in train_tasks])
        write_jsonl(out / "eval.jsonl", [r for r in evaluation if r["task"] in eval_tasks])
    return out


def common_params(steps: int) -> dict[str, Any]:
    """Every run: final evaluation only (forgetting here is before − after, not best − final), no
    drift tracking (observe-only statistics of full SFT; the main study measures drift)."""
    return {
        "schedule": "mixed",
        "max_steps": steps,
        "eval_every": steps,
        "eval_per_task": EVAL_PER_TASK,
        "dynamics_every": steps,
        "save_steps": 10 * steps,
        "resume": False,
        "track_drift": False,
    }


def evaluate_base(base_dir: Path, data_dir: Path) -> dict[str, float]:
    """Exact-match accuracy of `base_dir` per task on the first EVAL_PER_TASK eval records, as the
    finetune step's TaskAccuracyMonitor scores them."""
    from components.common.models import load_causal_lm
    from components.common.sft import first_per_task, greedy_record_answers

    records = first_per_task(read_jsonl(data_dir / "eval.jsonl"), EVAL_PER_TASK)
    model, tokenizer = load_causal_lm(base_dir)
    model.eval()
    answers = greedy_record_answers(model, tokenizer, records, MAX_NEW_TOKENS, batch_size=64)
    hits: dict[str, list[bool]] = {}
    for record, answer in zip(records, answers, strict=True):
        hits.setdefault(record["task"], []).append(answer == record["response"].strip())
    return {f"acc.{t}": sum(v) / len(v) for t, v in sorted(hits.items())}


def build(name: str, work: Path) -> dict[str, Any]:
    """Data, pretrained base and (retain) the knowledge base of a regime, built once in `work`
    and reused by every later process; returns the paths and the base's accuracy before SFT."""
    spec, root = REGIMES[name], work / name
    data_dir, pretrained = root / "data", root / "pretrained"
    if not (data_dir / "train.jsonl").is_file():
        prepare(DataPrepParams(**spec["data"], eval_per_task=EVAL_PER_TASK), "tiny", data_dir, root)
    if not (pretrained / "config.json").is_file():
        pretrain(PretrainParams(), ModelParams(), "tiny", data_dir, pretrained, root / "r")
    eval_tasks = spec["data"]["tasks"]
    sft_data = subset(data_dir, root / "sft_data", spec["sft_tasks"], eval_tasks)
    base = pretrained
    if "known" in spec:
        known = spec["known"]
        known_data = subset(data_dir, root / "known_data", known["tasks"], known["tasks"])
        base = root / "known_base"
        if not (base / "config.json").is_file():
            params = FinetuneParams(**common_params(known["steps"]), method="full", seed=0)
            finetune(params, "tiny", known_data, pretrained, base, root / "known_reports")
    return {"data": sft_data, "base": base, "before": evaluate_base(base, sft_data)}


def with_before(run: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    """The run's metrics plus, per task the base was evaluated on, `before.<task>` and
    `drop.<task>` = before − after (the forgetting of what the base knew)."""
    out = dict(run)
    for key, value in before.items():
        task = key.removeprefix("acc.")
        out[f"before.{task}"] = value
        if key in run:
            out[f"drop.{task}"] = value - run[key]
    return out


def finetune_runs(
    name: str,
    built: dict[str, Any],
    labels: dict[str, dict[str, Any]],
    seeds: list[int],
    work: Path,
) -> dict[str, list[dict[str, float]]]:
    steps = REGIMES[name]["steps"]
    runs: dict[str, list[dict[str, float]]] = {}
    for label, variant in labels.items():
        for seed in seeds:
            params = FinetuneParams(**merged(merged(common_params(steps), variant), {"seed": seed}))
            out = work / name / "runs" / label / str(seed)
            print(f"[{name}] {label} seed {seed}", flush=True)
            result = finetune(params, "tiny", built["data"], built["base"], out / "m", out / "r")
            shutil.rmtree(out / "m", ignore_errors=True)
            runs.setdefault(label, []).append(with_before(result, built["before"]))
    return runs


def single_task_runs(
    name: str, built: dict[str, Any], seeds: list[int], work: Path
) -> dict[str, list[dict[str, float]]]:
    """Full SFT on each task alone for that task's share of the multi-task steps (the same
    samples of the task as the multi-task run sees, without the other task)."""
    spec = REGIMES[name]
    train = read_jsonl(built["data"] / "train.jsonl")
    runs: dict[str, list[dict[str, float]]] = {}
    for task in spec["sft_tasks"]:
        data = subset(built["data"], work / name / "single" / task, [task], [task])
        share = sum(r["task"] == task for r in train) / len(train)
        steps = max(int(spec["steps"] * share), 20)
        for seed in seeds:
            params = FinetuneParams(**common_params(steps), method="full", seed=seed)
            out = work / name / "single_runs" / task / str(seed)
            print(f"[{name}] single {task} seed {seed}", flush=True)
            result = finetune(params, "tiny", data, built["base"], out / "m", out / "r")
            shutil.rmtree(out / "m", ignore_errors=True)
            runs.setdefault(f"single:{task}", []).append({**result, "steps": float(steps)})
    return runs


def choose(seeds: list[int], work: Path, regimes: list[str]) -> None:
    """Full SFT only on each candidate (and single-task SFT where the rule needs it); one raw
    file per regime."""
    for name in regimes:
        built = build(name, work)
        runs = finetune_runs(name, built, {"full": {"method": "full"}}, seeds, work)
        if "known" not in REGIMES[name]:
            runs |= single_task_runs(name, built, seeds, work)
        write_json(
            RESULTS / f"choice-{name}.json",
            {
                "regime": name,
                "seeds": seeds,
                "steps": REGIMES[name]["steps"],
                "before": built["before"],
                "results": runs,
            },
        )


def compare(name: str, seeds: list[int], work: Path) -> None:
    built = build(name, work)
    labels = {m: {"method": m} for m in METHODS}
    runs = finetune_runs(name, built, labels, seeds, work)
    if "known" not in REGIMES[name]:
        runs |= single_task_runs(name, built, seeds, work)
    tag = "-".join(map(str, seeds))
    write_json(
        RESULTS / f"compare-{name}-seeds-{tag}.json",
        {
            "regime": name,
            "seeds": seeds,
            "steps": REGIMES[name]["steps"],
            "before": built["before"],
            "results": runs,
        },
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.epi.regimes", description=__doc__.split("\n")[0]
    )
    parser.add_argument("command", choices=["choice", "compare", "report"])
    parser.add_argument("--seeds", type=int, nargs="+")
    parser.add_argument("--regimes", nargs="+", default=list(REGIMES))
    parser.add_argument("--regime", default="retain")
    parser.add_argument("--work", type=Path, default=Path("/tmp/epi-regimes"))
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    args = parser.parse_args(argv)
    if args.command != "report":
        import torch

        torch.set_num_threads(args.threads)
        os.environ.setdefault("MLFLOW_EXPERIMENT_NAME", "epi-regimes")
    if args.command == "choice":
        seeds = args.seeds or read_json(PREREGISTRATION)["choice_seeds"]
        choose(seeds, args.work, args.regimes)
    elif args.command == "compare":
        compare(
            args.regime, args.seeds or read_json(PREREGISTRATION)["comparison_seeds"], args.work
        )
    from experiments.epi.regime_report import write_regime_report

    print(f"wrote {write_regime_report(Path('docs/results'))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
