"""PNG overlays of held-out predictions: for each case the axial slice through the middle of the
lesion (most label voxels), shown bare and under each mask (label, predictions)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from components.common.plots import _save, pyplot


def lesion_slice(mask: np.ndarray) -> int:
    """The axial (last-axis) slice with the most mask voxels (the middle one if empty)."""
    counts = mask.sum((0, 1))
    return int(np.argmax(counts)) if counts.any() else mask.shape[-1] // 2


def overlay_figure(rows: Sequence[dict], path: str | os.PathLike, title: str) -> Path:
    """One row per case: {"name", "image": (X, Y, Z), "masks": {column title: (X, Y, Z)}}; the
    slice is chosen on the first mask (the label)."""
    n_columns = 1 + max(len(row["masks"]) for row in rows)
    fig, axes = pyplot().subplots(
        len(rows), n_columns, figsize=(2.2 * n_columns, 1.6 * len(rows) + 0.5), squeeze=False
    )
    for ax_row, row in zip(axes, rows, strict=True):
        masks = list(row["masks"].items())
        z = lesion_slice(masks[0][1])
        image = row["image"][..., z].T  # rows = y, columns = x
        for ax, (name, mask) in zip(ax_row, [(row["name"], None), *masks], strict=False):
            ax.imshow(image, cmap="gray", vmin=0, vmax=1, origin="lower")
            if mask is not None:
                overlay = np.ma.masked_equal(mask[..., z].T, 0)
                ax.imshow(overlay, cmap="autumn", alpha=0.5, origin="lower", vmin=0, vmax=1)
            ax.set_title(name, fontsize=8)
            ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)
