"""Per-case lesion metrics with MONAI: Dice, HD95 (mm), precision and recall, and their means per
domain. An empty prediction has HD95 = the ROI's diagonal (a penalty, so failures are not
dropped from the mean) and precision 0."""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import torch
from monai.metrics import ConfusionMatrixMetric, DiceMetric, HausdorffDistanceMetric

METRICS = ("dice", "hd95", "precision", "recall")


def case_metrics(
    prediction: torch.Tensor, label: torch.Tensor, spacing: Sequence[float]
) -> dict[str, float]:
    """Metrics of one binary prediction against its label, both (1, 1, X, Y, Z)."""
    prediction, label = prediction.float(), label.float()
    dice = DiceMetric(include_background=True, reduction="none", ignore_empty=False)
    confusion = ConfusionMatrixMetric(
        include_background=True, metric_name=("precision", "recall"), compute_sample=True
    )
    confusion(prediction, label)
    precision, recall = (float(value) for value in confusion.aggregate())
    diagonal = math.dist([0.0] * 3, [n * s for n, s in zip(label.shape[2:], spacing, strict=True)])
    if prediction.sum() == 0 or label.sum() == 0:
        hd95 = 0.0 if prediction.sum() == label.sum() else diagonal
    else:
        hd = HausdorffDistanceMetric(include_background=True, percentile=95, reduction="none")
        with warnings.catch_warnings():
            # MONAI 1.5 passes its own deprecated `always_return_as_numpy` internally
            warnings.filterwarnings("ignore", ".*always_return_as_numpy", FutureWarning)
            hd95 = float(hd(prediction, label, spacing=list(spacing)).item())
    return {
        "dice": float(dice(prediction, label).item()),
        "hd95": hd95,
        # 0/0 cases by rule: MONAI's aggregate turns them into 0 (not NaN), so test the counts
        "precision": precision if prediction.sum() > 0 else 0.0,  # nothing predicted
        "recall": recall if label.sum() > 0 else 1.0,  # nothing to find
    }


def summarize(rows: list[dict]) -> dict[str, float]:
    """Means per domain (`dice.<domain>` ...) and over the validation / test splits
    (`dice_val`, `dice_test` ...) of per-case rows with `domain`, `split` and METRICS."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        groups[row["domain"]].append(row)
        groups[f"_{row['split']}"].append(row)
    summary = {}
    for group, members in sorted(groups.items()):
        for metric in METRICS:
            mean = float(np.mean([row[metric] for row in members]))
            name = f"{metric}{group}" if group.startswith("_") else f"{metric}.{group}"
            summary[name] = mean
    return summary
