"""Behaviour signals as the generator and the discriminator read them (spec §Data): each metric
log1p-smoothed, cut into N levels, and written as one line of text; back from levels to expected
counts (RLHBC's reward shaping).

    >>> binning = fit_binning({"likes": [0, 1, 3, 10]}, bins=5)
    >>> behaviour_text(levels({"likes": 3}, binning), bins=5)
    '[User behavior] likes: 4/5'
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import numpy as np

from components.common.io import ProjectError
from components.rlhb.params import BinMode

PREFIX = "[User behavior]"
_ITEM = re.compile(r"(\w+): (\d+)/(\d+)")


def fit_binning(
    values: Mapping[str, Sequence[float]], bins: int, mode: BinMode = "equal_width"
) -> dict[str, list[float]]:
    """Per metric, the N + 1 edges of its levels on the log1p scale.

    equal_width: N equal parts between the 1st and 99th percentile (values outside are clipped
    into the first or last level); equal_frequency: the log1p values' k/N quantiles, with the
    minimum and maximum as the outer edges."""
    binning = {}
    for metric, raw in values.items():
        smoothed = np.log1p(np.asarray(raw, dtype=float))
        if mode == "equal_width":
            low, high = np.percentile(smoothed, [1, 99])
            edges = np.linspace(low, high, bins + 1)
        else:
            edges = np.quantile(smoothed, np.linspace(0, 1, bins + 1))
        binning[metric] = [float(e) for e in edges]
    return binning


def level(value: float, edges: Sequence[float]) -> int:
    """The 1-based level of one raw count: the number of inner edges at or below log1p(value),
    plus one (so a value on an edge goes up)."""
    inner = np.asarray(edges[1:-1])
    return int(np.searchsorted(inner, math.log1p(value), side="right")) + 1


def levels(
    behaviour: Mapping[str, float], binning: Mapping[str, Sequence[float]]
) -> dict[str, int]:
    return {metric: level(behaviour[metric], edges) for metric, edges in binning.items()}


def behaviour_text(behaviour_levels: Mapping[str, int], bins: int) -> str:
    """The spec's template, metrics in the given order."""
    items = "; ".join(f"{m}: {v}/{bins}" for m, v in behaviour_levels.items())
    return f"{PREFIX} {items}"


def parse_behaviour_text(text: str) -> dict[str, int]:
    """The levels a behaviour text states (the inverse of `behaviour_text`)."""
    if not text.startswith(PREFIX):
        raise ProjectError(f"a behaviour text starts with {PREFIX!r}: {text!r}")
    return {m: int(v) for m, v, _ in _ITEM.findall(text[len(PREFIX) :])}


def level_centres(edges: Sequence[float]) -> np.ndarray:
    """Each level's centre mapped back to a count: expm1 of the midpoint of its log1p edges."""
    e = np.asarray(edges, dtype=float)
    return np.expm1((e[:-1] + e[1:]) / 2)


def expected_counts(
    probabilities: Mapping[str, np.ndarray], binning: Mapping[str, Sequence[float]]
) -> dict[str, np.ndarray]:
    """Per metric, sum over levels of p(level) * centre(level); `probabilities[m]` is (n, N)."""
    return {m: probabilities[m] @ level_centres(binning[m]) for m in probabilities}


def shaped_reward(counts: Mapping[str, np.ndarray], epsilon: float = 1.0) -> np.ndarray:
    """RLHBC's scalar reward (spec): (likes - dislikes) / (views + clicks + epsilon)."""
    return (counts["likes"] - counts["dislikes"]) / (counts["views"] + counts["clicks"] + epsilon)
