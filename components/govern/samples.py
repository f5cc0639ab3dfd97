"""The samples a student learns from, as arrays: what govern_data writes, read back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from components.common.io import read_json, read_jsonl


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
