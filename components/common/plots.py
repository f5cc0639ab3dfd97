"""PNG plots (matplotlib, Agg) that steps log to MLflow and reports link to."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from components.common.io import atomic_path

if TYPE_CHECKING:
    from types import ModuleType

    from matplotlib.figure import Figure


def pyplot() -> ModuleType:
    """`matplotlib.pyplot` on the Agg backend. matplotlib is imported at the first plot, not with
    this module: it costs about half a second that a step's `--help` need not pay."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Figure, path: str | os.PathLike) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    pyplot().close(fig)
    return path


def line_plot(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    path: str | os.PathLike,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
) -> Path:
    """One line per named (x, y) series."""
    fig, ax = pyplot().subplots(figsize=(6.4, 4.0))
    for label, (xs, ys) in series.items():
        if len(xs):
            ax.plot(xs, ys, label=label, marker="." if len(xs) < 40 else None)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend()
    return _save(fig, path)


def bar_plot(
    values: Mapping[str, float], path: str | os.PathLike, *, title: str, ylabel: str
) -> Path:
    fig, ax = pyplot().subplots(figsize=(6.4, 4.0))
    names = list(values)
    bars = ax.bar(names, [values[name] for name in names], color="tab:blue")
    ax.bar_label(bars, fmt="%.2f")
    ax.set(title=title, ylabel=ylabel)
    ax.set_ylim(0, max(1.0, *values.values()) * 1.1 if values else 1.0)
    return _save(fig, path)


def grouped_bar_plot(
    values: Mapping[str, Mapping[str, tuple[float, float]]],
    path: str | os.PathLike,
    *,
    title: str,
    ylabel: str,
) -> Path:
    """Bars of mean ± std: one group per outer key (e.g. task), one bar per inner key (method)."""
    groups = list(values)
    members = list(dict.fromkeys(m for g in groups for m in values[g]))
    width = 0.8 / max(len(members), 1)
    fig, ax = pyplot().subplots(figsize=(max(6.4, 1.2 * len(groups) * len(members) / 3), 4.2))
    for i, member in enumerate(members):
        xs = [g_index + (i - (len(members) - 1) / 2) * width for g_index in range(len(groups))]
        means = [values[g].get(member, (float("nan"), 0.0))[0] for g in groups]
        errors = [values[g].get(member, (0.0, 0.0))[1] for g in groups]
        ax.bar(xs, means, width, yerr=errors, capsize=2, label=member)
    ax.set_xticks(range(len(groups)), groups)
    ax.set(title=title, ylabel=ylabel)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small", ncols=2)
    return _save(fig, path)
