"""The samples a student learns from, as arrays: what govern_data writes, read back."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from components.common.io import ProjectError, read_json, read_jsonl, read_numbered_jsonl

SPLITS = ("unlabeled", "labeled", "dev", "test")


@dataclass(frozen=True)
class Split:
    features: np.ndarray  # (n, dim)
    teachers: np.ndarray  # (n, K): each teacher's logit
    labels: np.ndarray  # (n,) 0/1; -1 where unlabeled
    truth: np.ndarray  # (n,) f*(x) in the synthetic world; empty for the user's data


def split_of(records: list[dict]) -> Split:
    truth = [r["truth"] for r in records if "truth" in r]
    return Split(
        np.asarray([r["features"] for r in records], dtype=np.float32),
        np.asarray([r["teachers"] for r in records], dtype=np.float32),
        np.asarray([-1 if r["label"] is None else r["label"] for r in records], dtype=np.int64),
        np.asarray(truth if len(truth) == len(records) else [], dtype=np.float32),
    )


def read_splits(data_dir: Path) -> tuple[dict[str, Split], list[str]]:
    """Every split govern_data wrote, and the teachers' names."""
    splits = {p.stem: split_of(read_jsonl(p)) for p in sorted(data_dir.glob("*.jsonl"))}
    return splits, read_json(data_dir / "teachers.json")


def user_records(path: Path) -> tuple[dict[str, list[dict]], list[str], list[dict]]:
    """The user's samples by split, the teachers' names, and one row per line for the suite."""
    numbered = read_numbered_jsonl(path)
    if not numbered:
        raise ProjectError("no samples", file=path)
    names = sorted(numbered[0][1].get("teachers") or {})
    records: dict[str, list[dict]] = {split: [] for split in SPLITS}
    rows = []
    for line, record in numbered:
        teachers = record.get("teachers")
        if not isinstance(teachers, dict) or sorted(teachers) != names:
            raise ProjectError(
                f"expected an object with the teachers {names}",
                file=path,
                line=line,
                field="teachers",
            )
        features = record.get("features")
        if not isinstance(features, list):
            raise ProjectError("expected a list of numbers", file=path, line=line, field="features")
        values = [teachers[n] for n in names]
        rows.append(row_of(line, record, features, values))
        if record.get("split") in records:
            records[record["split"]].append(
                {
                    "id": record.get("id"),
                    "features": features,
                    "teachers": values,
                    "label": record.get("label"),
                }
            )
    return records, names, rows


def row_of(line: int, record: dict, features: list, teachers: list) -> dict[str, Any]:
    numbers = [*features, *teachers]
    finite = all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in numbers
    )
    return {
        "line": line,
        "id": record.get("id"),
        "split": record.get("split"),
        "label": record.get("label"),
        "features": len(features),
        "teachers": len(teachers),
        "finite": finite,
    }
