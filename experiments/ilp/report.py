"""Tables and PNGs of docs/results/ilp.md. Generated sections live between HTML-comment markers,
so regenerating them keeps the hand-written discussion around them:

    python -m experiments.ilp.report   # rewrite the sections from the committed results JSONs

The benchmark and real-model runs call the same writers with their fresh results."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from components.common.io import read_json
from components.common.matrix_plot import matrix_plot
from components.common.plots import bar_plot
from components.ilp_diagnosis.attribute import CAUSES
from experiments.report import SPREAD_NOTE, format_pm, replace_section, table

REPO = Path(__file__).resolve().parents[2]
DOC = "ilp.md"
# the benchmark's runs in column order: X1 (for C1) and X2 (C2) with their compute-matched CPT
# control, then X3r/X3b (C3: relabel, bucketed batches), X4 (C4), X5 (C5) and their SFT control
INTERVENTIONS = ("X1", "X2", "ctrl_cpt", "X3r", "X3b", "X4", "X5", "ctrl_sft")


def _spread(stored: Mapping[str, float | None]) -> str:
    return format_pm(stored["mean"], stored["std"])


def _rounded(values: Sequence[float]) -> list[float]:
    return [round(v, 2) for v in values]


def benchmark_tables(summary: Mapping[str, Any]) -> str:
    parts = [
        f"Seeds: {summary['seeds']} ({SPREAD_NOTE}). Overall unlearned rate "
        f"{_spread(summary['unlearned_rate'])}; macro-F1 of diagnosed vs planted cause "
        f"**{_spread(summary['macro_f1'])}** "
        f"(per seed {_rounded(summary['macro_f1']['per_seed'])}).",
        "",
        f"**Unlearned rate per planted group** ({SPREAD_NOTE})",
        "",
        table(
            ["group", "unlearned rate"],
            [[g, _spread(v)] for g, v in summary["unlearned_rate_by_planted"].items()],
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
        rec = summary["recovery"]
        parts += [
            "",
            "**Recovery matrix** R[c, x]: fraction of the planted-cause records unlearned after "
            f"plain SFT that are learned after intervention x ({SPREAD_NOTE}; n = unlearned "
            "records per seed)",
            "",
            table(
                ["planted cause (n)", *INTERVENTIONS],
                [
                    [
                        f"{c} ({', '.join(map(str, rec['unlearned_records'][c]))})",
                        *[format_pm(rec["mean"][c][x], rec["std"][c][x]) for x in INTERVENTIONS],
                    ]
                    for c in CAUSES
                ],
            ),
            "",
            "Overall unlearned rate after each run: "
            + ", ".join(f"{x} {summary['unlearned_rate_after'][x]:.3f}" for x in INTERVENTIONS),
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
        mean = summary["recovery"]["mean"]
        paths.append(
            matrix_plot(
                [
                    [np.nan if mean[c][x] is None else mean[c][x] for x in INTERVENTIONS]
                    for c in CAUSES
                ],
                list(CAUSES),
                list(INTERVENTIONS),
                img_dir / f"ilp_recovery{suffix}.png",
                title="Recovery: fraction learned after each intervention",
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


def real_model_tables(result: Mapping[str, Any]) -> str:
    """The SmolLM2 lane: one run, so counts and rates without a spread."""
    summary, truth = result["summary"], result["truth"]
    return "\n".join(
        [
            f"SFT set: {result['records']} records ({result['known']} capitals the base knows, "
            f"{result['planted']['C2']} of them relabelled with a wrong capital, "
            f"{result['planted']['C1']} invented countries); LoRA r=8, "
            f"{result['finetune']['max_steps']} steps. Wall time {result['seconds']:.0f} s.",
            "",
            f"Unlearned rate **{summary['unlearned_rate']:.3f}** "
            f"({summary['unlearned']} of {summary['records']}); tau_JSD = "
            f"{summary['tau_jsd']:.3f}.",
            "",
            table(
                ["planted group", "unlearned rate"],
                [[g, f"{v:.2f}"] for g, v in truth["unlearned_rate_by_planted"].items()],
            ),
            "",
            table(
                ["diagnosed cause", "records"],
                [[c, n] for c, n in summary["cause_counts"].items()],
            ),
            "",
            table(
                ["planted \\ diagnosed", *truth["confusion"]["cols"]],
                [
                    [p, *row]
                    for p, row in zip(
                        truth["confusion"]["rows"], truth["confusion"]["matrix"], strict=True
                    )
                ],
            ),
            "",
            f"Macro-F1 over the planted causes present: {truth['macro_f1']:.2f}.",
        ]
    )


def write_real_model_section(out_dir: Path, result: Mapping[str, Any]) -> None:
    replace_section(out_dir / DOC, "real-model", real_model_tables(result))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.ilp.report", description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO / "docs/results")
    args = parser.parse_args(argv)
    for variant in ("", "proportional"):
        results = args.out / f"ilp_benchmark{f'_{variant}' if variant else ''}.json"
        if results.is_file():
            write_benchmark_section(args.out, read_json(results)["aggregate"], variant)
    if (args.out / "ilp_real_model.json").is_file():
        write_real_model_section(args.out, read_json(args.out / "ilp_real_model.json"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
