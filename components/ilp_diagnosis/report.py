"""Summaries of a diagnosis: unlearned rate, cause distribution (single- and multi-label) and,
when the data carries a planted ground truth, the confusion matrix and per-cause P/R/F1."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from components.ilp_diagnosis.attribute import CAUSES, UNATTRIBUTED

DIAGNOSED = (*CAUSES, UNATTRIBUTED)


def summary(rows: Sequence[dict[str, Any]], run_facts: Mapping[str, Any]) -> dict[str, Any]:
    unlearned = [r for r in rows if r["unlearned"]]
    analysed = [r for r in rows if r.get("analysed")]
    single = Counter(r["label"] for r in analysed)
    multi = Counter(label for r in analysed for label in r["labels"])
    by_task = {
        task: float(np.mean([r["unlearned"] for r in rows if r["task"] == task]))
        for task in sorted({r["task"] for r in rows})
    }
    return {
        "records": len(rows),
        "unlearned": len(unlearned),
        "unlearned_rate": len(unlearned) / len(rows) if rows else 0.0,
        "analysed": len(analysed),
        "unlearned_rate_by_task": by_task,
        "cause_counts": {c: single.get(c, 0) for c in DIAGNOSED},
        "cause_fraction": {c: single.get(c, 0) / max(len(analysed), 1) for c in DIAGNOSED},
        "multi_label_counts": {c: multi.get(c, 0) for c in CAUSES},
        "free_form_records": sum(r["mode"] == "free_form" for r in rows),
        **dict(run_facts),
    }


def ground_truth_report(rows: Sequence[dict[str, Any]], truth: Mapping[str, str]) -> dict[str, Any]:
    """Planted vs diagnosed cause. The confusion matrix counts unlearned, analysed records
    (planted rows incl. `control`); P/R/F1 per cause are over that set (attribution quality);
    `recall_end_to_end` divides by every planted record of the cause (detection x attribution)."""
    planted_rows = sorted({truth[r["id"]] for r in rows}, key=lambda c: (c not in CAUSES, c))
    analysed = [r for r in rows if r.get("analysed")]
    matrix = [
        [sum(1 for r in analysed if truth[r["id"]] == p and r["label"] == d) for d in DIAGNOSED]
        for p in planted_rows
    ]
    per_cause = {}
    for cause in CAUSES:
        tp = sum(1 for r in analysed if truth[r["id"]] == cause and r["label"] == cause)
        fp = sum(1 for r in analysed if truth[r["id"]] != cause and r["label"] == cause)
        fn = sum(1 for r in analysed if truth[r["id"]] == cause and r["label"] != cause)
        planted_total = sum(1 for r in rows if truth[r["id"]] == cause)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        per_cause[cause] = {
            "precision": precision,
            "recall": recall,
            "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
            "support": tp + fn,
            "recall_end_to_end": tp / planted_total if planted_total else 0.0,
        }
    present = [c for c in CAUSES if per_cause[c]["support"] > 0]
    unlearned_by_group = {
        group: float(np.mean([r["unlearned"] for r in rows if truth[r["id"]] == group]))
        for group in planted_rows
    }
    return {
        "confusion": {"rows": planted_rows, "cols": list(DIAGNOSED), "matrix": matrix},
        "per_cause": per_cause,
        "macro_f1": float(np.mean([per_cause[c]["f1"] for c in present])) if present else 0.0,
        "unlearned_rate_by_planted": unlearned_by_group,
    }


def flat_metrics(summary_: Mapping[str, Any], truth_report: Mapping[str, Any] | None) -> dict:
    """The numbers for metrics/ilp_diagnosis.json and MLflow (flat floats)."""
    metrics = {
        "records": float(summary_["records"]),
        "unlearned_rate": float(summary_["unlearned_rate"]),
        "unlearned": float(summary_["unlearned"]),
        "tau_jsd": float(summary_["tau_jsd"]),
        "early_late_gap": float(summary_["early_late_gap"]),
        **{f"cause.{c}": float(v) for c, v in summary_["cause_fraction"].items()},
        **{f"unlearned_rate.{t}": float(v) for t, v in summary_["unlearned_rate_by_task"].items()},
    }
    if truth_report is not None:
        metrics["macro_f1"] = truth_report["macro_f1"]
        metrics |= {f"f1.{c}": v["f1"] for c, v in truth_report["per_cause"].items()}
        metrics |= {
            f"unlearned_rate.planted.{g}": v
            for g, v in truth_report["unlearned_rate_by_planted"].items()
        }
    return metrics
