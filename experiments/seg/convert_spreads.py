"""Rewrite the results section of docs/results/seg.md with sample spreads converted from the
population spreads (ddof = 0) the page printed before the project settled on the sample std, for
as long as the per-run results of that study do not exist (they were not kept; a run of
`python -m experiments.seg.run` takes hours on a CPU and replaces this page's numbers).

    python -m experiments.seg.convert_spreads

It reads the transcription of the published tables (`docs/results/seg_published_cells.json`:
per cell the mean, the population std and n, the number of values the spread was taken over) and
prints each spread as sample std = population std × √(n / (n − 1)); means are printed as they
were."""

from __future__ import annotations

import argparse
import copy
import math
from pathlib import Path
from typing import Any

from components.common.io import read_json
from experiments.seg.report import render, write_page

COMMAND = "python -m experiments.seg.convert_spreads"
NOTE = (
    "*These spreads were converted, not recomputed: the study's per-run results were not kept, "
    "so each population std (ddof = 0) the page printed before was multiplied by √(n / (n − 1)) "
    "(n = 3 seeds per cell, 9 fold × seed runs for the paired `all` row), from the rounded "
    "values, so the last digit can be off by one. The means are unchanged. The next full run of "
    "`python -m experiments.seg.run` replaces them with spreads computed from its per-run "
    "results (`docs/results/seg_runs.json`).*"
)


def to_sample_std(population_std: float, n: int) -> float:
    return population_std * math.sqrt(n / (n - 1)) if n > 1 else math.nan


def converted(summary: dict[str, Any]) -> dict[str, Any]:
    """A copy of `summary` whose every cell with an `n` has its std converted to ddof = 1."""
    result = copy.deepcopy(summary)

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if {"mean", "std", "n"} <= set(node):
                node["std"] = to_sample_std(node["std"], node["n"])
            for child in node.values():
                visit(child)

    visit(result)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__)
    parser.add_argument("--cells", type=Path, default=Path("docs/results/seg_published_cells.json"))
    parser.add_argument("--out", type=Path, default=Path("docs/results/seg.md"))
    args = parser.parse_args(argv)
    body = f"{NOTE}\n\n{render(converted(read_json(args.cells)['summary']))}"
    write_page(args.out, body, COMMAND)
    print(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
