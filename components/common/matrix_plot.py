"""Annotated matrix PNG (confusion and recovery matrices), beside plots.py's line and bar plots."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from components.common.plots import _save, pyplot


def matrix_plot(
    matrix: Sequence[Sequence[float]],
    rows: Sequence[str],
    cols: Sequence[str],
    path: str | os.PathLike,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    fmt: str = "{:.2f}",
) -> Path:
    """One cell per (row, column), coloured by value and annotated; NaN cells are left blank."""
    values = np.asarray(matrix, dtype=float)
    fig, ax = pyplot().subplots(figsize=(1.0 + 0.9 * len(cols), 1.0 + 0.6 * len(rows)))
    finite = values[np.isfinite(values)]
    top = float(finite.max()) if finite.size else 1.0
    ax.imshow(np.nan_to_num(values, nan=0.0), cmap="Blues", vmin=0.0, vmax=max(top, 1e-9))
    for (r, c), value in np.ndenumerate(values):
        if np.isfinite(value):
            color = "white" if value > 0.6 * top else "black"
            ax.text(c, r, fmt.format(value), ha="center", va="center", color=color, fontsize=8)
    ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return _save(fig, path)
