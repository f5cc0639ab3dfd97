"""Tables and PNGs of docs/results/ilp.md. Generated sections live between HTML-comment markers,
so regenerating them keeps the hand-written discussion around them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from components.common.io import atomic_path
from components.common.matrix_plot import matrix_plot
from components.common.plots import bar_plot
from components.ilp_diagnosis.attribute import CAUSES

DOC = "ilp.md"


def _pm(cell: Mapping[str, float | None] | None, digits: int = 2) -> str:
    if not cell or cell.get("mean") is None:
        return "–"
    return f"{cell['mean']:.{digits}f} ± {cell['std']:.{digits}f}"


def _rounded(values: Sequence[float]) -> list[float]:
    return [round(v, 2) for v in values]


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def benchmark_tables(summary: Mapping[str, Any]) -> str:
    parts = [
        f"Seeds: {summary['seeds']}. Overall unlearned rate "
        f"{_pm(summary['unlearned_rate'])}; macro-F1 of diagnosed vs planted cause "
        f"**{_pm(summary['macro_f1'])}** (per seed {_rounded(summary['macro_f1']['per_seed'])}).",
        "",
        "**Unlearned rate per planted group** (mean ± std over seeds)",
        "",
        table(
            ["group", "unlearned rate"],
            [[g, _pm(v)] for g, v in summary["unlearned_rate_by_planted"].items()],
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
        "**Per-cause F1** (attribution among unlearned records)",
        "",
        table(["cause", "F1"], [[c, _pm(summary["f1"][c])] for c in CAUSES]),
    ]
    if "recovery" in summary:
        rec = summary["recovery"]
        names = list(next(iter(rec["mean"].values())))
        parts += [
            "",
            "**Recovery matrix** R[c, x]: fraction of the planted-cause records unlearned after "
            "plain SFT that are learned after intervention x (mean ± std over seeds; n = unlearned "
            "records per seed)",
            "",
            table(
                ["planted cause (n)", *names],
                [
                    [
                        f"{c} ({', '.join(map(str, rec['unlearned_records'][c]))})",
                        *[_pm({"mean": rec["mean"][c][x], "std": rec["std"][c][x]}) for x in names],
                    ]
                    for c in CAUSES
                ],
            ),
            "",
            "Overall unlearned rate after each run: "
            + ", ".join(f"{x} {v:.3f}" for x, v in summary["unlearned_rate_after"].items()),
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
        names = list(next(iter(mean.values())))
        paths.append(
            matrix_plot(
                [[np.nan if mean[c][x] is None else mean[c][x] for x in names] for c in CAUSES],
                list(CAUSES),
                names,
                img_dir / f"ilp_recovery{suffix}.png",
                title="Recovery: fraction learned after each intervention",
                xlabel="intervention",
                ylabel="planted cause",
            )
        )
    return paths


def replace_section(doc: Path, name: str, body: str) -> None:
    """Put `body` between <!-- name:begin --> and <!-- name:end --> (appended if absent)."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    text = doc.read_text(encoding="utf-8") if doc.is_file() else ""
    block = f"{begin}\n{body}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + block + "\n"
    with atomic_path(doc) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_benchmark_section(out_dir: Path, summary: Mapping[str, Any], variant: str = "") -> None:
    """The default benchmark's section, or (``variant``) its own section and PNG names."""
    benchmark_plots(out_dir / "img", summary, f"_{variant}" if variant else "")
    section = f"benchmark-{variant}" if variant else "benchmark"
    replace_section(out_dir / DOC, section, benchmark_tables(summary))
