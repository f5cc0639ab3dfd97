"""What every KFP component wrapper does with a step's result."""

from __future__ import annotations

from typing import Any


def log_step_metrics(artifact: Any, metrics: dict[str, float]) -> None:
    """Copy a step's metrics onto its KFP `Metrics` output (shown in the Kubeflow UI)."""
    for key, value in metrics.items():
        artifact.log_metric(key, float(value))
