"""The leave-one-domain-out comparison of docs/results/seg.md: the plain SegResNet (Dice + BCE)
against the ablation ladder up to the full dual-task objective, on the synthetic three-scanner
benchmark, every fold and seed, at a fixed 0.5 threshold.

    python -m experiments.seg.run --workers 2 --iterations 120

It writes its own benchmark data (never the DVC stage's), keeps one JSON line per finished run in
`--runs` (a rerun skips those, so it can be interrupted), then the per-run results of the study
into `--raw` (commit it: `python -m experiments.seg.report` rebuilds the page from it), the tables
into `--out` between the `<!-- results:begin/end -->` markers (the prose around them is kept),
the overlays into `--images`, and one MLflow run `seg_compare` with the tables and figures."""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import sys
import time
from pathlib import Path
from typing import Any

import mlflow
import numpy as np

from components.common.io import atomic_path, write_json
from components.common.msd import read_domains
from components.common.tracking import step_run
from components.ct_data.params import CtDataParams
from components.ct_data.synth import write_domain
from components.seg_train.evaluate_step import evaluate_cases
from components.seg_train.params import SegTrainParams
from components.seg_train.train import split_cases, train
from experiments.seg.report import publish, save_examples
from pipelines.params import load_project_params

log = logging.getLogger(__name__)
DOMAINS = ("A", "B", "C")
# The study's own seg_train settings where params.yaml's demo values (bench/demo_sweep.py) differ
STUDY_SEG_TRAIN: dict[str, Any] = {"target": "lesion", "learning_rate": 0.003}
# the ablation ladder, each rung adding one part of the objective (cumulative)
RUNGS: dict[str, dict[str, Any]] = {
    "plain": {"sdf": 0, "reciprocal": 0, "views": False, "consistency": 0, "contrastive": 0},
    "+sdf": {"sdf": 1, "reciprocal": 0, "views": False, "consistency": 0, "contrastive": 0},
    "+reciprocal": {"sdf": 1, "reciprocal": 1, "views": False, "consistency": 0, "contrastive": 0},
    "+views": {"sdf": 1, "reciprocal": 1, "views": True, "consistency": 1, "contrastive": 0},
    "full": {"sdf": 1, "reciprocal": 1, "views": True, "consistency": 1, "contrastive": 0.1},
}


def benchmark_data(root: Path, data: CtDataParams) -> Path:
    """The benchmark's three sites (written once, deterministic)."""
    if not (root / "domains.json").is_file():
        with atomic_path(root) as tmp:
            tmp.mkdir()
            for name in DOMAINS:
                write_domain(
                    tmp / name, name, data.cases_per_domain, data.seed, data.shape, data.spacing
                )
            write_json(tmp / "domains.json", {name: name for name in DOMAINS})
    return root


def run_params(base: SegTrainParams, held_out: str, seed: int, rung: str) -> SegTrainParams:
    raw = base.model_dump(mode="json")
    raw.update(
        seed=seed,
        num_threads=1,
        train_domains=[d for d in DOMAINS if d != held_out],
        test_domains=[held_out],
    )
    raw["loss"].update(RUNGS[rung])
    return SegTrainParams.model_validate(raw)


def one_run(job: dict[str, Any]) -> dict[str, Any]:
    """Train one rung on one fold and seed; evaluate on validation and held-out cases."""
    params = SegTrainParams.model_validate(job["params"])
    domains = read_domains(job["data"])
    n = params.holdout_per_domain
    fit, val = split_cases(domains, params.train_domains, n, "train_domains")
    _, test = split_cases(domains, params.test_domains, n, "test_domains")
    started = time.perf_counter()
    model, history = train(params, fit)
    cases = [{**c, "split": "val"} for c in val] + [{**c, "split": "test"} for c in test]
    rows, examples = evaluate_cases(model, cases, params, keep=job["keep"])
    return {
        **{k: job[k] for k in ("fold", "seed", "rung")},
        "seconds": time.perf_counter() - started,
        "final_loss": float(np.mean([row["loss"] for row in history[-20:]])),
        "rows": rows,
        "examples": [e for e in examples if e["domain"] == job["fold"]],
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m experiments.seg.run", description=__doc__)
    parser.add_argument("--params", default="params.yaml", help="seg_train section as the base")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--folds", nargs="+", default=list(DOMAINS), choices=DOMAINS)
    parser.add_argument("--rungs", nargs="+", default=list(RUNGS), choices=list(RUNGS))
    parser.add_argument("--iterations", type=int, default=120)
    parser.add_argument("--cases-per-domain", type=int, default=24)
    parser.add_argument("--shape", type=int, nargs=3, default=[48, 48, 32])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data", type=Path, default=Path("data/ct_benchmark"))
    parser.add_argument("--runs", type=Path, default=Path("reports/seg_compare/runs.jsonl"))
    parser.add_argument("--raw", type=Path, default=Path("docs/results/seg_runs.json"))
    parser.add_argument("--out", type=Path, default=Path("docs/results/seg.md"))
    parser.add_argument("--images", type=Path, default=Path("docs/results/img"))
    return parser.parse_args(argv)


def finished_runs(path: Path) -> dict[tuple, dict]:
    """(fold, seed, rung) → run, of the runs already in the JSON-lines file."""
    if not path.is_file():
        return {}
    runs = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines())
    return {(run["fold"], run["seed"], run["rung"]): run for run in runs}


def plan(args: argparse.Namespace, base: SegTrainParams, done: dict) -> list[dict[str, Any]]:
    """The runs still to do; the first seed's plain and full runs keep overlay examples."""
    return [
        {
            "fold": fold,
            "seed": seed,
            "rung": rung,
            "data": str(args.data),
            "keep": 3 if seed == args.seeds[0] and rung in ("plain", "full") else 0,
            "params": run_params(base, fold, seed, rung).model_dump(mode="json"),
        }
        for fold in args.folds
        for seed in args.seeds
        for rung in args.rungs
        if (fold, seed, rung) not in done
    ]


def execute(jobs: list[dict], workers: int, runs_file: Path, done: dict) -> None:
    """Run `jobs` in `workers` processes; each finished run is appended to `runs_file` (its
    overlay arrays beside it) and to `done`."""
    runs_file.parent.mkdir(parents=True, exist_ok=True)
    with multiprocessing.get_context("spawn").Pool(workers) as pool, runs_file.open("a") as handle:
        for run in pool.imap_unordered(one_run, jobs):
            test = np.mean([r["dice"] for r in run["rows"] if r["split"] == "test"])
            log.info(
                "%s seed %s %s: held-out Dice %.3f (%.0f s)",
                *(run[k] for k in ("fold", "seed", "rung")),
                test,
                run["seconds"],
            )
            save_examples(run, runs_file.parent / "examples")
            handle.write(json.dumps({k: v for k, v in run.items() if k != "examples"}) + "\n")
            handle.flush()
            done[run["fold"], run["seed"], run["rung"]] = run


def raw_results(args: argparse.Namespace, done: dict, command: str) -> dict[str, Any]:
    """The study's settings and its per-run results (per-case rows, no overlay arrays)."""
    keys = [(f, s, r) for f in args.folds for s in args.seeds for r in args.rungs]
    runs = [{k: v for k, v in done[key].items() if k != "examples"} for key in keys if key in done]
    settings = {
        "command": command,
        "domains": list(DOMAINS),
        "folds": args.folds,
        "seeds": args.seeds,
        "rungs": args.rungs,
        "iterations": args.iterations,
        "cases_per_domain": args.cases_per_domain,
        "shape": args.shape,
    }
    return {"settings": settings, "runs": runs}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    project = load_project_params(args.params)
    data = CtDataParams(cases_per_domain=args.cases_per_domain, shape=tuple(args.shape))
    benchmark_data(args.data, data)
    base = project.seg_train.model_copy(update={**STUDY_SEG_TRAIN, "iterations": args.iterations})
    done = finished_runs(args.runs)
    jobs = plan(args, base, done)
    log.info("%d runs to do, %d already in %s", len(jobs), len(done), args.runs)
    execute(jobs, args.workers, args.runs, done)

    command = " ".join(["python -m experiments.seg.run", *(sys.argv[1:] if argv is None else argv)])
    raw = raw_results(args, done, command)
    write_json(args.raw, raw)
    body, pngs = publish(raw, args.out, args.images, args.runs.parent / "examples")
    with step_run("seg_compare", project.profile, base):
        mlflow.log_text(body, "seg_compare.md")
        for png in pngs:
            mlflow.log_artifact(str(png), artifact_path="overlays")
    print(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
