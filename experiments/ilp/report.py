"""Tables and PNGs of docs/results/ilp.md. Generated sections live between HTML-comment markers,
so regenerating them keeps the hand-written discussion around them:

    python -m experiments.ilp.report   # rewrite the sections from the committed results JSONs

The benchmark runs call the same writers with their fresh results; the SmolLM2 benchmark's
sections are experiments/ilp/smollm2_report.py's."""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from components.common.io import read_json
from components.common.matrix_plot import matrix_plot
from components.common.plots import bar_plot
from components.ilp_diagnosis.attribute import CAUSES
from experiments.report import SPREAD_NOTE, format_pm, replace_section, table
from experiments.stats import summary_ci, threshold_verdict, wilson_ci

REPO = Path(__file__).resolve().parents[2]
DOC = "ilp.md"
# the benchmark's runs in column order: X1 (for C1) and X2 (C2) with their compute-matched CPT
# control, then X3r/X3b (C3: relabel, bucketed batches), X4 (C4) with its schedule-only control,
# X5 (C5) and its SFT control
INTERVENTIONS = ("X1", "X2", "ctrl_cpt", "X3r", "X3b", "X4", "ctrl_mix", "X5", "ctrl_sft")
# macro-F1 targets: the 0.8 and our tiny-world pass criterion
MACRO_F1_TARGETS = (0.8, 0.6)


def _spread(stored: Mapping[str, float | None]) -> str:
    return format_pm(stored["mean"], stored["std"])


def _rounded(values: Sequence[float]) -> list[float]:
    return [round(v, 2) for v in values]


def _seed_ci(stored: Mapping[str, Any], n: int) -> str:
    """The 95 % t interval over n seeds of a value stored as mean and sample std."""
    return str(summary_ci(stored["mean"], stored["std"], n))


def macro_f1_verdicts(
    stored: Mapping[str, Any], n: int, targets: Sequence[float] = MACRO_F1_TARGETS
) -> str:
    interval = summary_ci(stored["mean"], stored["std"], n)
    return "; ".join(f"≥ {target}: **{threshold_verdict(interval, target)}**" for target in targets)


def reconstructed_totals(mean: float, std: float | None, n: Sequence[int]) -> list[int]:
    """The possible totals of records learned over the seeds, from a stored per-seed mean and
    sample std of k_i / n_i (seeds with n_i > 0), over integer k_i ≤ n_i: for results written
    before the per-seed counts were kept (one total when the stored values pin it down)."""
    sizes = [m for m in n if m > 0]
    totals = set()
    for ks in itertools.product(*(range(m + 1) for m in sizes)):
        rates = [k / m for k, m in zip(ks, sizes, strict=True)]
        fits = math.isclose(statistics.fmean(rates), mean, abs_tol=1e-9)
        if std is not None and len(rates) > 1:
            fits = fits and math.isclose(statistics.stdev(rates), std, abs_tol=1e-9)
        if fits:
            totals.add(sum(ks))
    return sorted(totals)


def pooled_recovery(recovery: Mapping[str, Any], cause: str, x: str) -> tuple[list[int], int]:
    """(the possible totals of records learned after x, the records unlearned after plain SFT),
    pooled over seeds; no totals when no seed had such records."""
    n = recovery["unlearned_records"][cause]
    if recovery["mean"][cause][x] is None:
        return [], sum(n)
    if "recovered_records" in recovery:
        return [sum(recovery["recovered_records"][cause][x])], sum(n)
    return reconstructed_totals(recovery["mean"][cause][x], recovery["std"][cause][x], n), sum(n)


def pooled_cell(recovery: Mapping[str, Any], cause: str, x: str) -> str:
    """`p [low, high] (k/n)`; where the stored values fit several totals, their range and the
    Wilson bounds of the lowest and the highest."""
    totals, n = pooled_recovery(recovery, cause, x)
    if not totals:
        return "n/a"
    low, high = wilson_ci(totals[0], n), wilson_ci(totals[-1], n)
    if len(totals) == 1:
        return f"{low} ({totals[0]}/{n})"
    return (
        f"{low.estimate:.2f}–{high.estimate:.2f} [{low.low:.2f}, {high.high:.2f}] "
        f"({totals[0]}–{totals[-1]}/{n})"
    )


def runs_of(summary: Mapping[str, Any]) -> list[str]:
    """The interventions a benchmark result holds, in column order (results written before
    ctrl_mix existed lack it)."""
    return [x for x in INTERVENTIONS if x in summary["unlearned_rate_after"]]


def benchmark_tables(
    summary: Mapping[str, Any], targets: Sequence[float] = MACRO_F1_TARGETS
) -> str:
    seeds = len(summary["seeds"])
    parts = [
        f"Seeds: {summary['seeds']} ({SPREAD_NOTE}; 95 % CI: the t interval over seeds, "
        "`experiments.stats`). Overall unlearned rate "
        f"{_spread(summary['unlearned_rate'])} (95 % CI "
        f"{_seed_ci(summary['unlearned_rate'], seeds)}); macro-F1 of diagnosed vs planted cause "
        f"**{_spread(summary['macro_f1'])}** (95 % CI {_seed_ci(summary['macro_f1'], seeds)}; "
        f"per seed {_rounded(summary['macro_f1']['per_seed'])}); target "
        f"{macro_f1_verdicts(summary['macro_f1'], seeds, targets)}.",
        "",
        f"**Unlearned rate per planted group** ({SPREAD_NOTE})",
        "",
        table(
            ["group", "unlearned rate", "95 % CI"],
            [
                [g, _spread(v), _seed_ci(v, seeds)]
                for g, v in summary["unlearned_rate_by_planted"].items()
            ],
        ),
        "",
        "**Confusion matrix** (unlearned records summed over seeds; rows planted, columns "
        "diagnosed)",
        "",
        table(
            ["planted \\ diagnosed", *summary["confusion"]["cols"]],
            [
                [p, *row]
                for p, row in zip(
                    summary["confusion"]["rows"], summary["confusion"]["matrix"], strict=True
                )
            ],
        ),
        "",
        f"**Per-cause F1** (attribution among unlearned records; {SPREAD_NOTE})",
        "",
        table(["cause", "F1"], [[c, _spread(summary["f1"][c])] for c in CAUSES]),
    ]
    if "recovery" in summary:
        rec, runs = summary["recovery"], runs_of(summary)
        parts += [
            "",
            "**Recovery matrix** R[c, x]: of the planted-cause records unlearned after plain "
            "SFT, the fraction learned after intervention x, **pooled over the seeds' records** "
            "(learned / unlearned), with its Wilson 95 % CI; n = unlearned records per seed. "
            "A range (`0.04–0.08 … (1–2/26)`): these results kept only the per-seed mean and "
            "std, which more than one pooled count fits; the range spans them, the interval "
            "runs from the lowest count's lower Wilson bound to the highest's upper one (the "
            "next benchmark run stores the counts).",
            "",
            table(
                ["planted cause (n)", *runs],
                [
                    [
                        f"{c} ({', '.join(map(str, rec['unlearned_records'][c]))})",
                        *[pooled_cell(rec, c, x) for x in runs],
                    ]
                    for c in CAUSES
                ],
            ),
            "",
            "Overall unlearned rate after each run: "
            + ", ".join(f"{x} {summary['unlearned_rate_after'][x]:.3f}" for x in runs),
        ]
    return "\n".join(parts)


def benchmark_plots(img_dir: Path, summary: Mapping[str, Any], suffix: str = "") -> list[Path]:
    paths = [
        bar_plot(
            {g: v["mean"] for g, v in summary["unlearned_rate_by_planted"].items()},
            img_dir / f"ilp_unlearned_by_group{suffix}.png",
            title="Unlearned rate per planted group (mean over seeds)",
            ylabel="unlearned rate",
        ),
        bar_plot(
            {
                c: float(np.sum([counts[c] for counts in summary["cause_counts"]]))
                for c in summary["cause_counts"][0]
            },
            img_dir / f"ilp_cause_breakdown{suffix}.png",
            title="Diagnosed causes (summed over seeds)",
            ylabel="records",
        ),
        matrix_plot(
            summary["confusion"]["matrix"],
            summary["confusion"]["rows"],
            summary["confusion"]["cols"],
            img_dir / f"ilp_confusion{suffix}.png",
            title=f"Planted vs diagnosed (macro-F1 {summary['macro_f1']['mean']:.2f})",
            xlabel="diagnosed",
            ylabel="planted",
            fmt="{:.0f}",
        ),
    ]
    if "recovery" in summary:
        rec, runs = summary["recovery"], runs_of(summary)
        pooled = {(c, x): pooled_recovery(rec, c, x) for c in CAUSES for x in runs}
        # one value per cell for the figure: the middle of the totals that fit
        paths.append(
            matrix_plot(
                [
                    [
                        float(np.mean(pooled[c, x][0])) / pooled[c, x][1]
                        if pooled[c, x][0]
                        else np.nan
                        for x in runs
                    ]
                    for c in CAUSES
                ],
                list(CAUSES),
                runs,
                img_dir / f"ilp_recovery{suffix}.png",
                title="Recovery: fraction learned after each intervention (pooled)",
                xlabel="intervention",
                ylabel="planted cause",
            )
        )
    return paths


def write_benchmark_section(out_dir: Path, summary: Mapping[str, Any], variant: str = "") -> None:
    """The default benchmark's section, or (``variant``) its own section and PNG names."""
    benchmark_plots(out_dir / "img", summary, f"_{variant}" if variant else "")
    section = f"benchmark-{variant}" if variant else "benchmark"
    replace_section(out_dir / DOC, section, benchmark_tables(summary))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.ilp.report", description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO / "docs/results")
    args = parser.parse_args(argv)
    for variant in ("", "proportional"):
        results = args.out / f"ilp_benchmark{f'_{variant}' if variant else ''}.json"
        if results.is_file():
            write_benchmark_section(args.out, read_json(results)["aggregate"], variant)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
