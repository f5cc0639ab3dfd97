"""Attribution: ordered rules, first match wins; every rule that fires is also kept (the
multi-label set) together with the evidence it fired on.

    C3  a near-duplicate prompt has a different answer
    C2  the base answers another option confidently, SFT moved it (JSD >= tau) and, when the
        record's facts can be probed, the base's facts disagree with the label (our guard,
        `rules.c2_needs_fact_conflict`) and, optionally, its fact probe believes another value
        with probability >= `rules.c2_belief`; or (`rules.c2_test: belief`) only that belief
    C1  the base does not know the record's facts and SFT barely moved it (JSD < tau; the JSD
        condition can be dropped, `rules.c1_needs_low_jsd`)
    C4  learned at some checkpoint (unlearned at the end), early in the schedule, and early records
        are unlearned more often than late ones (dataset-level gate)
    C5  never learned, and still improving (slope < -delta) or rare template or complex
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from components.ilp_diagnosis.params import IlpRules

CAUSES = ("C1", "C2", "C3", "C4", "C5")
UNATTRIBUTED = "unattributed"
ORDER = ("C3", "C2", "C1", "C4", "C5")

Signals = dict[str, Any]


def jsd_threshold(rules: IlpRules, unlearned_signals: list[Signals]) -> float:
    """tau_J: the fixed value, or the median JSD over the unlearned set."""
    if rules.jsd_threshold is not None:
        return rules.jsd_threshold
    values = [s["jsd"] for s in unlearned_signals if s.get("jsd") is not None]
    return float(np.median(values)) if values else 0.1


def early_late_gap(unlearned: list[bool], positions: list[float], early_cut: float) -> float:
    """Unlearned rate of records early in the schedule minus that of the last stage."""
    early = [u for u, p in zip(unlearned, positions, strict=True) if p < early_cut]
    late = [u for u, p in zip(unlearned, positions, strict=True) if p >= max(positions)]
    if not early or not late:
        return 0.0
    return float(np.mean(early) - np.mean(late))


def c4_gate(unlearned: list[bool], positions: list[float], rules: IlpRules) -> tuple[float, bool]:
    """The dataset-level gate of C4: the early-vs-late gap, and whether early records are
    unlearned more often than late ones by more than `rules.early_late_gap`."""
    gap = early_late_gap(unlearned, positions, rules.early_cut)
    return gap, gap > rules.early_late_gap


def _c3(s: Signals, r: IlpRules, tau: float, gate: bool) -> dict | None:
    if s["contradicts"]:
        return {"near_duplicates_with_other_answer": s["contradicts"][:5]}
    return None


def _c2(s: Signals, r: IlpRules, tau: float, gate: bool) -> dict | None:
    if r.c2_test == "belief":
        against = s.get("belief_against_label")
        if against is not None and r.c2_belief is not None and against >= r.c2_belief:
            return {"belief_against_label": round(against, 3), "fact_known": s["fact_known"]}
        return None
    fact_conflict = s["fact_known"] is None or s["fact_known"] < r.fact_known
    against = s.get("belief_against_label")
    # with c2_belief set, a record whose fact cannot be probed shows no contradicting belief
    believes_otherwise = r.c2_belief is None or (against is not None and against >= r.c2_belief)
    if (
        not s["base_correct"]
        and s["base_confidence"] >= r.base_confidence
        and s["jsd"] >= tau
        and (fact_conflict or not r.c2_needs_fact_conflict)
        and believes_otherwise
    ):
        evidence = {
            "base_answer": s["base_answer"],
            "base_confidence": round(s["base_confidence"], 3),
            "jsd": round(s["jsd"], 3),
            "fact_known": s["fact_known"],
        }
        if r.c2_belief is not None:
            evidence["belief_against_label"] = against
        return evidence
    return None


def _c1(s: Signals, r: IlpRules, tau: float, gate: bool) -> dict | None:
    unknown = s["fact_known"] is not None and s["fact_known"] < r.fact_known
    if unknown and (s["jsd"] < tau or not r.c1_needs_low_jsd):
        return {"fact_known": s["fact_known"], "jsd": round(s["jsd"], 3)}
    return None


def _c4(s: Signals, r: IlpRules, tau: float, gate: bool) -> dict | None:
    if gate and s["ever_learned"] and s["position"] < r.early_cut:
        return {
            "loss_min": round(s["loss_min"], 3),
            "loss_final": round(s["loss_final"], 3),
            "stage": s["stage"],
        }
    return None


def _c5(s: Signals, r: IlpRules, tau: float, gate: bool) -> dict | None:
    if s["ever_learned"]:
        return None
    reasons = {
        "slope_per_50": s["slope_per_50"] < -r.slope_delta,
        "rare_template": s["rare"],
        "complex": s["complex"],
    }
    if any(reasons.values()):
        return {
            "fired": [k for k, v in reasons.items() if v],
            "slope_per_50": round(s["slope_per_50"], 4),
            "cluster_size": s["cluster_size"],
            "hops": s["hops"],
        }
    return None


RULES: dict[str, Callable[[Signals, IlpRules, float, bool], dict | None]] = {
    "C3": _c3,
    "C2": _c2,
    "C1": _c1,
    "C4": _c4,
    "C5": _c5,
}


def attribute(signals: Signals, rules: IlpRules, tau: float, c4_gate: bool) -> dict[str, Any]:
    """{label, labels, evidence} for one unlearned record."""
    evidence = {}
    for cause in ORDER:
        fired = RULES[cause](signals, rules, tau, c4_gate)
        if fired is not None:
            evidence[cause] = fired
    labels = list(evidence)
    return {
        "label": labels[0] if labels else UNATTRIBUTED,
        "labels": sorted(labels),
        "evidence": evidence,
    }
