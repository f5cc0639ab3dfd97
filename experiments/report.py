"""What every results page and benchmark shares: one spread, one table, one marked section.

Spread: the sample standard deviation (ddof = 1) over seeds or runs, everywhere. A page says so
with `SPREAD_NOTE`; a single value has no spread and prints as `value ± n/a`."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from components.common.io import atomic_path

STD_DDOF = 1
SPREAD_NOTE = "mean ± sample std (ddof = 1) over seeds"


def mean_std(values: Iterable[float | None]) -> tuple[float, float]:
    """Mean and sample std of the finite values; (nan, nan) when there are none, std nan for one."""
    clean = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not clean:
        return math.nan, math.nan
    spread = statistics.stdev(clean) if len(clean) > STD_DDOF else math.nan
    return statistics.fmean(clean), spread


def pm(values: Iterable[float | None], digits: int = 2, scale: float = 1.0) -> str:
    """`mean ± std` of `values` times `scale`, `n/a` when nothing is finite."""
    return format_pm(*mean_std(v * scale if v is not None else None for v in values), digits)


def format_pm(mean: float | None, std: float | None, digits: int = 2) -> str:
    """`mean ± std` of a spread `mean_std` computed earlier (e.g. stored in a results JSON);
    None or nan prints as `n/a`."""
    if mean is None or math.isnan(mean):
        return "n/a"
    spread = "n/a" if std is None or math.isnan(std) else f"{std:.{digits}f}"
    return f"{mean:.{digits}f} ± {spread}"


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def replace_section(doc: Path, name: str, body: str) -> None:
    """Put `body` between `<!-- name:begin -->` and `<!-- name:end -->` in `doc`, keeping the
    hand-written text around it; the section is appended when the markers are absent."""
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


def write_results(out: Path, page: str, saved: dict[str, Any]) -> None:
    """A benchmark's page (`out`.md) and the results it is computed from (`out`.json)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(page)
    out.with_suffix(".json").write_text(json.dumps(saved, indent=1))
