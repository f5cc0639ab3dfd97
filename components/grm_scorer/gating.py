"""The routes compared in E-GRM, each a pure function of one item's samples.

Every item carries its M direct samples (the method's temperature schedule; sample 0 is greedy when
T_0 = 0) and its K CoT paths with the scorer's scores. The CoT paths are drawn once for all items
and shared by every route that reads them (paired comparison); a route pays only for what it reads.

- always_direct: the greedy direct answer (1 decoding).
- cot_vote: always K CoT paths + majority vote (self-consistency; the base CoT-GRM).
- cot_scorer: always K CoT paths + the scorer's best path ("w/o dynamic CoT").
- gated_vote: consensus gating, then vote over the CoT paths ("w/o discriminative scorer").
- egrm: consensus gating, then the scorer's best path (full E-GRM).
- best_of_k_oracle: any correct CoT path counts (upper bound for any selector; no extra cost)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from components.grm_scorer.consensus import consensus, majority_vote, route
from components.grm_scorer.cost import Outcome, Sample, spend

ROUTES = ("always_direct", "cot_vote", "cot_scorer", "gated_vote", "egrm")


@dataclass(frozen=True)
class Item:
    gold: str  # normalised verifiable answer
    difficulty: int
    direct: tuple[Sample, ...]
    cot: tuple[Sample, ...]


def best_scored(paths: Sequence[Sample]) -> Sample:
    """argmax_k s_k (the first path among equal scores)."""
    return max(paths, key=lambda s: s.score)


def _outcome(item: Item, answer: str, route_taken: str, cost: dict[str, float]) -> Outcome:
    return Outcome(
        answer=answer,
        correct=answer == item.gold,
        route=route_taken,
        tokens=int(cost["tokens"]),
        forward_passes=int(cost["forward_passes"]),
        flops=cost["flops"],
        wall_s=cost["wall_s"],
    )


def _add(*costs: dict[str, float]) -> dict[str, float]:
    return {key: sum(c[key] for c in costs) for key in costs[0]}


def decide(item: Item, route_name: str, tau: float = 0.8) -> Outcome:
    if route_name == "always_direct":
        return _outcome(item, item.direct[0].answer, "direct", spend(item.direct[:1]))
    if route_name == "cot_vote":
        answer = majority_vote([s.answer for s in item.cot])
        return _outcome(item, answer, "cot", spend(item.cot))
    if route_name == "cot_scorer":
        return _outcome(item, best_scored(item.cot).answer, "cot", spend(item.cot, scored=True))
    if route_name == "best_of_k_oracle":
        hit = any(s.answer == item.gold for s in item.cot)
        answer = item.gold if hit else item.cot[0].answer
        return _outcome(item, answer, "cot", spend(item.cot))
    if route_name in ("gated_vote", "egrm"):
        probe = consensus([s.answer for s in item.direct])
        if route(probe.share, tau) == "direct":
            return _outcome(item, probe.answer, "direct", spend(item.direct))
        scored = route_name == "egrm"
        answer = (
            best_scored(item.cot).answer if scored else majority_vote([s.answer for s in item.cot])
        )
        return _outcome(item, answer, "cot", _add(spend(item.direct), spend(item.cot, scored)))
    raise ValueError(f"unknown route {route_name!r}")
