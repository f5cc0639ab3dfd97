"""The leave-one-domain-out comparison of docs/results/seg.md: the plain SegResNet (Dice + BCE)
against the ablation ladder up to the full dual-task objective, on the synthetic three-scanner
benchmark, every fold and seed, at a fixed 0.5 threshold.

    python -m components.seg_train.compare --workers 2

It writes its own benchmark data (never the DVC stage's), keeps one JSON line per finished run in
`--runs` (a rerun skips those, so it can be interrupted), then the tables into `--out` between the
`<!-- results -->` markers (the prose around them is kept), the overlays into `--images`, and one
MLflow run `seg_compare` with the tables and figures."""

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
from components.common.tracking import step_run
from components.ct_data.params import CtDataParams
from components.data_prep.ct_synth import write_domain
from components.data_prep.ct_volumes import read_domains
from components.seg_train.evaluate import evaluate_cases
from components.seg_train.overlays import overlay_figure
from components.seg_train.params import SegTrainParams
from components.seg_train.train import split_cases, train
from pipelines.params import load_project_params

log = logging.getLogger(__name__)
DOMAINS = ("A", "B", "C")
# the ladder of the spec, each rung adding one part of the objective (cumulative)
RUNGS: dict[str, dict[str, Any]] = {
    "plain": {"sdf": 0, "reciprocal": 0, "views": False, "consistency": 0, "contrastive": 0},
    "+sdf": {"sdf": 1, "reciprocal": 0, "views": False, "consistency": 0, "contrastive": 0},
    "+reciprocal": {"sdf": 1, "reciprocal": 1, "views": False, "consistency": 0, "contrastive": 0},
    "+views": {"sdf": 1, "reciprocal": 1, "views": True, "consistency": 1, "contrastive": 0},
    "full": {"sdf": 1, "reciprocal": 1, "views": True, "consistency": 1, "contrastive": 0.1},
}
START, END = "<!-- results -->", "<!-- /results -->"


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


def _examples_path(run: dict, folder: Path) -> Path:
    return folder / f"{run['fold']}_{run['seed']}_{run['rung']}.npz"


def save_examples(run: dict, folder: Path) -> None:
    """Overlay arrays of a run, beside the JSON lines (too big for them)."""
    if run["examples"]:
        arrays = {}
        for i, e in enumerate(run["examples"]):
            arrays[f"{i}|name|{e['name']}"] = e["image"]
            for title, mask in e["masks"].items():
                arrays[f"{i}|mask|{title}"] = mask
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(_examples_path(run, folder)) as tmp, tmp.open("wb") as handle:
            np.savez_compressed(handle, **arrays)


def load_examples(run: dict, folder: Path) -> list[dict]:
    path = _examples_path(run, folder)
    if not path.is_file():
        return []
    examples: dict[int, dict] = {}
    with np.load(path) as arrays:
        for key in arrays.files:
            index, kind, name = key.split("|", 2)
            example = examples.setdefault(int(index), {"masks": {}})
            if kind == "name":
                example.update(name=name, image=arrays[key])
            else:
                example["masks"][name] = arrays[key]
    return [examples[i] for i in sorted(examples)]


def _mean_std(values: list[float], digits: int) -> str:
    return f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}"


def per_run(runs: list[dict], split: str, metric: str) -> dict[tuple, float]:
    """(rung, fold, seed) → the run's mean of `metric` over its `split` cases."""
    return {
        (r["rung"], r["fold"], r["seed"]): float(
            np.mean([row[metric] for row in r["rows"] if row["split"] == split])
        )
        for r in runs
    }


def tables(runs: list[dict], seeds: list[int]) -> str:
    """Markdown: held-out Dice and HD95 per fold and overall (mean ± std over seeds), the
    in-domain validation Dice, and the paired full − plain difference. Only (fold, seed) pairs
    that have every rung count, so a partial run file gives a partial but paired table."""
    rungs = [r for r in RUNGS if any(run["rung"] == r for run in runs)]
    have = {(run["rung"], run["fold"], run["seed"]) for run in runs}
    pairs = [(f, s) for f in DOMAINS for s in seeds if all((r, f, s) in have for r in rungs)]
    folds = list(dict.fromkeys(f for f, _ in pairs))
    seeds_of = {f: [s for g, s in pairs if g == f] for f in folds}
    common = [s for s in seeds if all(s in seeds_of[f] for f in folds)]
    lines = []
    if len(pairs) < len(DOMAINS) * len(seeds):
        lines += [f"*Partial: {len(pairs)} of {len(DOMAINS) * len(seeds)} fold × seed pairs.*", ""]
    for metric, digits, title in (
        ("dice", 3, "Lesion Dice on the held-out domain (higher is better)"),
        ("hd95", 1, "Lesion HD95 in mm on the held-out domain (lower is better)"),
    ):
        values = per_run(runs, "test", metric)
        lines += [f"**{title}**", ""]
        header = [f"→{f} (train {'+'.join(d for d in DOMAINS if d != f)})" for f in folds]
        lines += ["| method | " + " | ".join(header) + " | mean of folds |"]
        lines += ["|---" * (len(folds) + 2) + "|"]
        for rung in rungs:
            cells = [_mean_std([values[rung, f, s] for s in seeds_of[f]], digits) for f in folds]
            overall = [np.mean([values[rung, f, s] for f in folds]) for s in common]
            mean = _mean_std(overall, digits) if common else "–"
            lines.append(f"| {rung} | " + " | ".join(cells) + f" | {mean} |")
        lines.append("")

    val, test = per_run(runs, "val", "dice"), per_run(runs, "test", "dice")
    lines += ["**In-domain validation Dice vs held-out Dice (mean over fold × seed)**", ""]
    lines += ["| method | in-domain Dice | held-out Dice | gap |", "|---|---|---|---|"]
    for rung in rungs:
        v = np.mean([val[rung, f, s] for f, s in pairs])
        t = np.mean([test[rung, f, s] for f, s in pairs])
        lines.append(f"| {rung} | {v:.3f} | {t:.3f} | {v - t:.3f} |")
    lines.append("")

    if {"plain", "full"} <= set(rungs):
        lines += ["**Paired difference full − plain, held-out Dice (per fold, over seeds)**", ""]
        lines += ["| fold | full − plain | runs where full is better |", "|---|---|---|"]
        for f in [*folds, "all"]:
            keys = [(g, s) for g, s in pairs if f in (g, "all")]
            diffs = [test["full", g, s] - test["plain", g, s] for g, s in keys]
            wins = sum(d > 0 for d in diffs)
            lines.append(f"| {f} | {_mean_std(diffs, 3)} | {wins} / {len(diffs)} |")
        lines.append("")
        lines += [verdict(test, pairs), ""]
    seconds = {r: np.mean([run["seconds"] for run in runs if run["rung"] == r]) for r in rungs}
    timing = ", ".join(f"{r} {s:.0f} s" for r, s in seconds.items())
    lines.append(f"Mean wall time per run (train + evaluate, 1 thread, shared CPU): {timing}.")
    return "\n".join(lines)


def verdict(test: dict[tuple, float], pairs: list[tuple[str, int]]) -> str:
    """One sentence from the paired held-out differences: "better" needs a positive mean and
    full ahead in at least two thirds of the (fold, seed) runs, "worse" the mirror image."""
    diffs = [test["full", f, s] - test["plain", f, s] for f, s in pairs]
    mean, wins, n = float(np.mean(diffs)), sum(d > 0 for d in diffs), len(diffs)
    if mean > 0 and wins >= 2 * n / 3:
        outcome = "generalised better than"
    elif mean < 0 and wins <= n / 3:
        outcome = "generalised worse than"
    else:
        outcome = "did not clearly differ from"
    return (
        f"**Verdict (computed):** on this benchmark the full dual-task objective {outcome} the "
        f"plain SegResNet on the held-out scanner: Dice difference {mean:+.3f} "
        f"(std {np.std(diffs):.3f}), full ahead in {wins} of {n} fold × seed runs."
    )


def write_report(path: Path, body: str, command: str) -> None:
    """Replace the text between the markers (create the file with only them if missing)."""
    text = path.read_text(encoding="utf-8") if path.is_file() else f"{START}\n{END}\n"
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    block = f"{START}\n<!-- generated by: {command} -->\n\n{body}\n\n{END}"
    with atomic_path(path) as tmp:
        tmp.write_text(head + block + tail, encoding="utf-8")


def comparison_overlays(runs: list[dict], out_dir: Path, seed: int) -> list[Path]:
    """Per held-out domain: label, plain and full predictions on the same test cases."""
    paths = []
    for fold in DOMAINS:
        by_rung = {
            r["rung"]: r["examples"] for r in runs if r["fold"] == fold and r["seed"] == seed
        }
        if not {"plain", "full"} <= set(by_rung) or not by_rung["full"]:
            continue
        rows = []
        for plain, full in zip(by_rung["plain"], by_rung["full"], strict=True):
            (label, p_mask), (f_name, f_mask) = (
                list(plain["masks"].items()),
                list(full["masks"].items())[1],
            )
            rows.append(
                {
                    "name": plain["name"],
                    "image": plain["image"],
                    "masks": {
                        "label": label[1],
                        p_mask[0].replace("prediction", "plain"): p_mask[1],
                        f_name.replace("prediction", "full"): f_mask,
                    },
                }
            )
        title = f"held-out {fold}, trained on {'+'.join(d for d in DOMAINS if d != fold)}"
        paths.append(overlay_figure(rows, out_dir / f"seg_overlay_{fold}.png", title=title))
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components.seg_train.compare")
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
    parser.add_argument("--out", type=Path, default=Path("docs/results/seg.md"))
    parser.add_argument("--images", type=Path, default=Path("docs/results/img"))
    parser.add_argument(
        "--report-only", action="store_true", help="write the tables from --runs, train nothing"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    project = load_project_params(args.params)
    data = CtDataParams(cases_per_domain=args.cases_per_domain, shape=tuple(args.shape))
    benchmark_data(args.data, data)
    base = project.seg_train.model_copy(update={"iterations": args.iterations})
    done = {}
    if args.runs.is_file():
        for line in args.runs.read_text().splitlines():
            run = json.loads(line)
            done[run["fold"], run["seed"], run["rung"]] = run
    jobs = [
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
        if (fold, seed, rung) not in done and not args.report_only
    ]
    log.info("%d runs to do, %d already in %s", len(jobs), len(done), args.runs)
    args.runs.parent.mkdir(parents=True, exist_ok=True)
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool, args.runs.open("a") as f:
        for run in pool.imap_unordered(one_run, jobs):
            test = np.mean([r["dice"] for r in run["rows"] if r["split"] == "test"])
            log.info(
                "%s seed %s %s: held-out Dice %.3f (%.0f s)",
                run["fold"],
                run["seed"],
                run["rung"],
                test,
                run["seconds"],
            )
            save_examples(run, args.runs.parent / "examples")
            f.write(json.dumps({k: v for k, v in run.items() if k != "examples"}) + "\n")
            f.flush()
            done[run["fold"], run["seed"], run["rung"]] = run

    keys = [(f, s, r) for f in args.folds for s in args.seeds for r in args.rungs]
    runs = [done[key] for key in keys if key in done]
    for run in runs:
        run["examples"] = load_examples(run, args.runs.parent / "examples")
    given = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--report-only"]
    command = "python -m components.seg_train.compare " + " ".join(given)
    body = tables(runs, args.seeds)
    write_report(args.out, body, command.strip())
    pngs = comparison_overlays(runs, args.images, args.seeds[0])
    with step_run("seg_compare", project.profile, base):
        mlflow.log_text(body, "seg_compare.md")
        for png in pngs:
            mlflow.log_artifact(str(png), artifact_path="overlays")
    print(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
