"""Metrics more than one room reports."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def auroc(scores: Sequence[float], positives: Sequence[bool]) -> float:
    """Area under the ROC curve; NaN when only one class is present."""
    from sklearn.metrics import roc_auc_score

    if len(set(positives)) < 2:
        return math.nan
    return float(roc_auc_score(np.asarray(positives, dtype=int), np.asarray(scores)))
