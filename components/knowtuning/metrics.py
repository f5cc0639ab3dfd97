"""The aspect metrics of a long-form answer against the entity's gold facts (programmatic, no
judge): each generated sentence is parsed to a fact (`world.parse_fact`); an unparseable sentence
or a fact that differs from the gold one in value or antecedent counts as an incorrect fact.

- completeness: share of the gold facts stated correctly (recall);
- correct facts: how many distinct gold facts were stated correctly (the FActScore analogue);
- error rate: incorrect sentences / all sentences (0 for an empty answer); a repeated correct fact
  counts once, its repeats as incorrect, so padding never pays;
- logicality: of the chain's dependency pairs (fact k, fact k+1) whose two facts were both stated
  correctly, the share stated in chain order (None when no such pair was stated);
- kendall_tau: rank correlation of the correct facts' stated order with the chain order (None
  below two facts)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scipy.stats import kendalltau

from components.knowtuning.world import Entity, parse_fact, split_sentences


def aspect_scores(text: str, entity: Entity) -> dict[str, Any]:
    gold = {fact.attribute: (i, fact) for i, fact in enumerate(entity.facts)}
    sentences = split_sentences(text)
    position: dict[int, int] = {}  # chain index -> first sentence that states it correctly
    for s, sentence in enumerate(sentences):
        fact = parse_fact(sentence, entity.name)
        if fact is not None and fact.attribute in gold:
            index, truth = gold[fact.attribute]
            if fact == truth and index not in position:
                position[index] = s
    correct = len(position)
    pairs = [k for k in range(len(entity.facts) - 1) if k in position and k + 1 in position]
    ordered = [position[k] < position[k + 1] for k in pairs]
    chain = sorted(position)
    tau = (
        float(kendalltau(chain, [position[k] for k in chain]).statistic)
        if len(chain) >= 2
        else None
    )
    return {
        "sentences": len(sentences),
        "correct_facts": correct,
        "completeness": correct / len(entity.facts),
        "error_rate": (len(sentences) - correct) / len(sentences) if sentences else 0.0,
        "logicality": sum(ordered) / len(ordered) if ordered else None,
        "kendall_tau": tau,
    }


def mean_scores(scores: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Each metric's mean over the answers that define it (logicality and tau skip None)."""
    out = {}
    for key in scores[0]:
        values = [s[key] for s in scores if s[key] is not None]
        out[key] = float(sum(values) / len(values)) if values else float("nan")
    return out
