"""The behaviour-log format: one logged ⟨query, response, behaviour⟩ triplet per JSONL line,

    {"id": "q17-a3", "query": "how do i get better at chess",
     "response": "chess rewards patience ...",
     "behaviour": {"views": 14, "clicks": 3, "likes": 2, "dislikes": 0, "dwell": 41.5}}

`id` is optional (default `<file stem>-<line>`); `behaviour` holds a non-negative count (or, like
dwell seconds, a non-negative number) for every metric of `rlhb_data.metrics`, and may hold more.
Rows for the Great Expectations suite are flat: one column per metric. A malformed line, a missing
metric or a negative count stops with its file, line and field."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from components.common.io import ProjectError, read_numbered_jsonl

SUITE_NAME = "behaviour_logs"


def rows_of(records: list[dict[str, Any]], metrics: tuple[str, ...]) -> list[dict[str, Any]]:
    """One flat row per record for the suite (`line`, `id`, `query`, `response`, metrics)."""
    return [
        {
            "line": r.get("line", n),
            "id": r["id"],
            "query": r["query"],
            "response": r["response"],
            **{m: r["behaviour"].get(m) for m in metrics},
        }
        for n, r in enumerate(records, start=1)
    ]


def expectations(metrics: tuple[str, ...]) -> list:
    import great_expectations as gx

    ex = gx.expectations
    return [
        ex.ExpectTableRowCountToBeBetween(min_value=1),
        ex.ExpectColumnValuesToBeUnique(column="id"),
        ex.ExpectColumnValueLengthsToBeBetween(column="query", min_value=1),
        ex.ExpectColumnValueLengthsToBeBetween(column="response", min_value=1),
        *(ex.ExpectColumnValuesToNotBeNull(column=m) for m in metrics),
        *(ex.ExpectColumnValuesToBeBetween(column=m, min_value=0) for m in metrics),
    ]


def read_logs(path: Path, metrics: tuple[str, ...]) -> list[dict[str, Any]]:
    """The user's logs, each with its `line`; types are checked here, values by the suite."""
    numbered = read_numbered_jsonl(path)
    if not numbered:
        raise ProjectError("no logged triplets", file=path)
    records = []
    for line, raw in numbered:
        unknown = set(raw) - {"id", "query", "response", "behaviour"}
        if unknown:
            raise ProjectError("unknown field", file=path, line=line, field=sorted(unknown)[0])
        for field in ("query", "response"):
            if not isinstance(raw.get(field), str):
                raise ProjectError("expected a string", file=path, line=line, field=field)
        behaviour = raw.get("behaviour")
        if not isinstance(behaviour, dict):
            raise ProjectError("expected an object", file=path, line=line, field="behaviour")
        for metric in metrics:
            value = behaviour.get(metric)
            if not _is_number(value):
                raise ProjectError(
                    "expected a number", file=path, line=line, field=f"behaviour.{metric}"
                )
        records.append(
            {
                "line": line,
                "id": str(raw.get("id", f"{path.stem}-{line}")),
                "query": raw["query"],
                "response": raw["response"],
                "behaviour": behaviour,
            }
        )
    return records


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
