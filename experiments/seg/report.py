"""Tables, verdict and overlays of docs/results/seg.md, from the study's per-run results.

    python -m experiments.seg.report   # results from docs/results/seg_runs.json, speed from
                                       # bench/results/seg_throughput.json

`summarize` turns the runs into the page's cells (mean, sample std, n); `render` prints the cells,
so a page written from fresh runs and one written from stored cells look the same. The generated
block lives between `<!-- results:begin -->` and `<!-- results:end -->`; the prose around it is
kept."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from components.common.io import atomic_path, read_json
from components.seg_train.overlays import overlay_figure
from experiments.report import SPREAD_NOTE, format_pm, mean_std, replace_section, table
from experiments.stats import summary_ci, threshold_verdict

SECTION = "results"
SPEED_SECTION = "speed"
SPEED_COMMAND = "python -m bench.seg_throughput --threads 1 --repeats 5"
METRICS = (
    ("dice", 3, "Lesion Dice on the held-out domain (higher is better)"),
    ("hd95", 1, "Lesion HD95 in mm on the held-out domain (lower is better)"),
)


def cell(values: Sequence[float]) -> dict[str, float]:
    mean, std = mean_std(values)
    return {"mean": mean, "std": std, "n": len(values)}


def per_run(runs: list[dict], split: str, metric: str) -> dict[tuple, float]:
    """(rung, fold, seed) → the run's mean of `metric` over its `split` cases."""
    return {
        (r["rung"], r["fold"], r["seed"]): float(
            np.mean([row[metric] for row in r["rows"] if row["split"] == split])
        )
        for r in runs
    }


def paired_runs(runs: list[dict], domains: Sequence[str], seeds: Sequence[int]) -> list[tuple]:
    """The (fold, seed) pairs that have every rung, so a partial run file gives paired tables."""
    rungs = {run["rung"] for run in runs}
    have = {(run["rung"], run["fold"], run["seed"]) for run in runs}
    return [(f, s) for f in domains for s in seeds if all((r, f, s) in have for r in rungs)]


def held_out_cells(
    runs: list[dict], pairs: list[tuple], rungs: list[str], seeds: Sequence[int]
) -> dict[str, Any]:
    """Per metric and rung: one cell per fold (over seeds) and `mean` (over the seeds every fold
    has, of the mean over folds)."""
    folds = list(dict.fromkeys(f for f, _ in pairs))
    seeds_of = {f: [s for g, s in pairs if g == f] for f in folds}
    common = [s for s in seeds if all(s in seeds_of[f] for f in folds)]
    cells: dict[str, Any] = {}
    for metric, _, _ in METRICS:
        values = per_run(runs, "test", metric)
        cells[metric] = {
            rung: {
                **{f: cell([values[rung, f, s] for s in seeds_of[f]]) for f in folds},
                "mean": cell([float(np.mean([values[rung, f, s] for f in folds])) for s in common]),
            }
            for rung in rungs
        }
    return cells


def summarize(runs: list[dict], domains: Sequence[str], seeds: Sequence[int]) -> dict[str, Any]:
    """The page's numbers: held-out cells, in-domain vs held-out gap, paired full − plain cells
    (per fold and `all`, with the runs where full is better) and wall time per rung."""
    rungs = list(dict.fromkeys(run["rung"] for run in runs))
    pairs = paired_runs(runs, domains, seeds)
    val, test = per_run(runs, "val", "dice"), per_run(runs, "test", "dice")
    gap = {}
    for rung in rungs:
        v = float(np.mean([val[rung, f, s] for f, s in pairs]))
        t = float(np.mean([test[rung, f, s] for f, s in pairs]))
        gap[rung] = {"val": v, "test": t, "gap": v - t}
    paired = {}
    if {"plain", "full"} <= set(rungs):
        for fold in [*dict.fromkeys(f for f, _ in pairs), "all"]:
            diffs = [
                test["full", f, s] - test["plain", f, s] for f, s in pairs if fold in (f, "all")
            ]
            paired[fold] = {**cell(diffs), "wins": sum(d > 0 for d in diffs)}
    seconds = {
        r: float(np.mean([run["seconds"] for run in runs if run["rung"] == r])) for r in rungs
    }
    return {
        "domains": list(domains),
        "rungs": rungs,
        "pairs": len(pairs),
        "expected_pairs": len(domains) * len(seeds),
        "held_out": held_out_cells(runs, pairs, rungs, seeds),
        "gap": gap,
        "paired": paired,
        "seconds": seconds,
    }


def paired_ci(stored: dict[str, float]) -> str:
    """The 95 % t interval of a stored paired difference (mean, sample std, n runs)."""
    return summary_ci(stored["mean"], stored["std"], stored["n"]).format(3)


def verdict(overall: dict[str, float]) -> str:
    """One sentence from the paired held-out differences, read off their 95 % t interval:
    "better" when it lies wholly above 0, "worse" when wholly below, else no clear difference."""
    interval = summary_ci(overall["mean"], overall["std"], overall["n"])
    outcome = {
        "supported": "generalised better than",
        "contradicted": "generalised worse than",
        "not shown": "did not clearly differ from",
    }[threshold_verdict(interval, 0.0)]
    return (
        f"**Verdict (computed):** on this benchmark the full dual-task objective {outcome} the "
        f"plain SegResNet on the held-out scanner: Dice difference {interval.format(3)} "
        f"(mean and 95 % t interval over the {overall['n']} fold × seed runs, sample std "
        f"{overall['std']:.3f}), full ahead in {overall['wins']} of {overall['n']}."
    )


def _pm(stored: dict[str, float], digits: int) -> str:
    return format_pm(stored["mean"], stored["std"], digits)


def held_out_tables(summary: dict[str, Any]) -> list[str]:
    domains, rungs, parts = summary["domains"], summary["rungs"], []
    folds = [f for f in domains if f in summary["held_out"]["dice"][rungs[0]]]
    header = [
        "method",
        *(f"→{f} (train {'+'.join(d for d in domains if d != f)})" for f in folds),
        "mean of folds",
    ]
    for metric, digits, title in METRICS:
        cells = summary["held_out"][metric]
        rows = [
            [rung, *(_pm(cells[rung][key], digits) for key in [*folds, "mean"])] for rung in rungs
        ]
        parts += [f"**{title}**", table(header, rows)]
    return parts


def render(summary: dict[str, Any]) -> str:
    """The results block: held-out Dice and HD95 per fold, the generalisation gap, the paired
    full − plain difference, the verdict and the wall time (in the order of `rungs` and
    `domains`, whatever the order of the stored cells)."""
    rungs, gap, paired, parts = summary["rungs"], summary["gap"], summary["paired"], []
    if summary["pairs"] < summary["expected_pairs"]:
        parts.append(
            f"*Partial: {summary['pairs']} of {summary['expected_pairs']} fold × seed pairs.*"
        )
    parts.append(
        f"Spreads: {SPREAD_NOTE} (the mean-of-folds column: over seeds, of each seed's mean over "
        "the folds; the paired difference: over the fold × seed runs it counts)."
    )
    parts += held_out_tables(summary)
    gap_rows = [
        [rung, *(f"{gap[rung][key]:.3f}" for key in ("val", "test", "gap"))] for rung in rungs
    ]
    parts += [
        "**In-domain validation Dice vs held-out Dice (mean over fold × seed)**",
        table(["method", "in-domain Dice", "held-out Dice", "gap"], gap_rows),
    ]
    if paired:
        folds = [f for f in [*summary["domains"], "all"] if f in paired]
        rows = [
            [f, _pm(paired[f], 3), paired_ci(paired[f]), f"{paired[f]['wins']} / {paired[f]['n']}"]
            for f in folds
        ]
        parts += [
            "**Paired difference full − plain, held-out Dice (per fold, over seeds)**",
            table(["fold", "full − plain", "95 % CI", "runs where full is better"], rows),
            verdict(paired["all"]),
        ]
    timing = ", ".join(f"{r} {summary['seconds'][r]:.0f} s" for r in rungs)
    parts.append(f"Mean wall time per run (train + evaluate, 1 thread, shared CPU): {timing}.")
    return "\n\n".join(parts)


def speed_table(bench: dict[str, Any]) -> str:
    """The training and inference cost of the dual-task model from bench/seg_throughput.py's
    medians. The dual step trains two RandConv views of one source crop, so per source crop it
    processes twice the voxels of a plain step on that crop: its cost per crop against the plain
    model at batch two (the fair reference: the same batch shape) is 2 · plain₂ / dual in
    voxels/s, against plain at batch one 2 · plain₁ / dual."""
    train, infer = bench["train_voxels_per_s"], bench["infer_voxels_per_s"]
    plain1, plain2, dual = train["plain"], train["plain_batch2"], train["dual"]
    rows = [
        [
            "training, voxels/s, batch of two (dual: the two views)",
            f"{plain2:,.0f}",
            f"{dual:,.0f}",
            f"**{plain2 / dual:.2f}×** per voxel",
            "≤ 1.5×",
        ],
        [
            "training, per source crop, against plain at batch two",
            f"{plain2:,.0f}",
            f"{dual:,.0f}",
            f"**{2 * plain2 / dual:.2f}×** per crop",
            "",
        ],
        [
            "training, per source crop, against plain at batch one",
            f"{plain1:,.0f}",
            f"{dual:,.0f}",
            f"{2 * plain1 / dual:.2f}× per crop",
            "",
        ],
        [
            "sliding-window inference, voxels/s",
            f"{infer['plain']:,.0f}",
            f"{infer['dual']:,.0f}",
            f"**{infer['plain'] / infer['dual']:.2f}×**",
            "≤ 1.1×",
        ],
    ]
    return "\n\n".join(
        [
            f"`{SPEED_COMMAND}` (`bench/results/seg_throughput.json`, {bench['threads']} "
            f"thread; medians of interleaved repeats, which the bench does not keep, so no "
            "interval):",
            table(["", "plain", "dual-task", "dual / plain time", "target"], rows),
        ]
    )


def write_speed(doc: Path, bench_json: Path) -> None:
    if bench_json.is_file():
        replace_section(doc, SPEED_SECTION, speed_table(read_json(bench_json)))


def write_page(doc: Path, body: str, command: str) -> None:
    replace_section(doc, SECTION, f"<!-- generated by: {command} -->\n\n{body}\n")


def examples_path(run: dict, folder: Path) -> Path:
    return folder / f"{run['fold']}_{run['seed']}_{run['rung']}.npz"


def save_examples(run: dict, folder: Path) -> None:
    """Overlay arrays of a run, beside the per-run results (too big for them)."""
    if not run["examples"]:
        return
    arrays = {}
    for i, example in enumerate(run["examples"]):
        arrays[f"{i}|name|{example['name']}"] = example["image"]
        for title, mask in example["masks"].items():
            arrays[f"{i}|mask|{title}"] = mask
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(examples_path(run, folder)) as tmp, tmp.open("wb") as handle:
        np.savez_compressed(handle, **arrays)


def load_examples(run: dict, folder: Path) -> list[dict]:
    path = examples_path(run, folder)
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


def overlay_rows(plain: list[dict], full: list[dict]) -> list[dict]:
    """Label, plain and full predictions of the same cases, one row per case."""
    rows = []
    for p, f in zip(plain, full, strict=True):
        (_, label), (p_title, p_mask) = list(p["masks"].items())
        f_title, f_mask = list(f["masks"].items())[1]
        masks = {
            "label": label,
            p_title.replace("prediction", "plain"): p_mask,
            f_title.replace("prediction", "full"): f_mask,
        }
        rows.append({"name": p["name"], "image": p["image"], "masks": masks})
    return rows


def comparison_overlays(
    runs: list[dict], domains: Sequence[str], out_dir: Path, seed: int
) -> list[Path]:
    """Per held-out domain: label, plain and full predictions on the same test cases."""
    paths = []
    for fold in domains:
        by_rung = {
            r["rung"]: r["examples"] for r in runs if r["fold"] == fold and r["seed"] == seed
        }
        if not {"plain", "full"} <= set(by_rung) or not by_rung["full"]:
            continue
        rows = overlay_rows(by_rung["plain"], by_rung["full"])
        title = f"held-out {fold}, trained on {'+'.join(d for d in domains if d != fold)}"
        paths.append(overlay_figure(rows, out_dir / f"seg_overlay_{fold}.png", title=title))
    return paths


def publish(raw: dict[str, Any], doc: Path, images: Path, examples: Path) -> tuple[str, list]:
    """Write the results block of `doc` and the overlays (where their arrays are in `examples`)
    from the study's raw results; returns the block and the PNGs."""
    settings, runs = raw["settings"], raw["runs"]
    for run in runs:
        run["examples"] = load_examples(run, examples)
    body = render(summarize(runs, settings["domains"], settings["seeds"]))
    write_page(doc, body, settings["command"])
    return body, comparison_overlays(runs, settings["domains"], images, settings["seeds"][0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.seg.report", description=__doc__)
    parser.add_argument("--raw", type=Path, default=Path("docs/results/seg_runs.json"))
    parser.add_argument("--out", type=Path, default=Path("docs/results/seg.md"))
    parser.add_argument("--images", type=Path, default=Path("docs/results/img"))
    parser.add_argument("--examples", type=Path, default=Path("reports/seg_compare/examples"))
    parser.add_argument("--bench", type=Path, default=Path("bench/results/seg_throughput.json"))
    args = parser.parse_args(argv)
    write_speed(args.out, args.bench)
    body, _ = publish(read_json(args.raw), args.out, args.images, args.examples)
    print(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
