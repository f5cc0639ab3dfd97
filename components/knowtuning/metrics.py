"""The aspect metrics of a long-form answer against its gold facts (programmatic, no judge): each
generated sentence is mapped to the fact it states (for the world, `world.parse_fact`); a sentence
that states no gold fact (unparseable, or a fact differing in value or antecedent) is incorrect.

- completeness: share of the gold facts stated correctly (recall);
- correct facts: how many distinct gold facts were stated correctly (the FActScore analogue);
- error rate: incorrect sentences / all sentences (0 for an empty answer); a repeated correct fact
  counts once, its repeats as incorrect, so padding never pays;
- logicality: of the chain's dependency pairs (fact k, fact k+1) whose two facts were both stated
  correctly, the share stated in chain order (None when no such pair was stated);
- kendall_tau: rank correlation of the correct facts' stated order with the chain order (None
  below two facts)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

from scipy.stats import kendalltau

from components.knowtuning.world import Entity, parse_fact, split_sentences


def aspect_scores(
    text: str, gold: Sequence[Hashable], key: Callable[[str], Hashable | None]
) -> dict[str, Any]:
    """The metrics of `text` against the `gold` facts in chain order; `key` maps a sentence to
    the fact it states (comparable with `gold`), None when it states none."""
    index = {fact: i for i, fact in enumerate(gold)}
    sentences = split_sentences(text)
    position: dict[int, int] = {}  # chain index -> first sentence that states it correctly
    for s, sentence in enumerate(sentences):
        i = index.get(key(sentence))
        if i is not None and i not in position:
            position[i] = s
    correct = len(position)
    pairs = [k for k in range(len(gold) - 1) if k in position and k + 1 in position]
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
        "completeness": correct / len(gold),
        "error_rate": (len(sentences) - correct) / len(sentences) if sentences else 0.0,
        "logicality": sum(ordered) / len(ordered) if ordered else None,
        "kendall_tau": tau,
    }


def entity_scores(text: str, entity: Entity) -> dict[str, Any]:
    """`aspect_scores` against a world entity: sentences parsed by the world's templates."""
    return aspect_scores(text, entity.facts, lambda s: parse_fact(s, entity.name))


def normalise(sentence: str) -> str:
    """A user's fact as compared: lower case, single spaces, no final punctuation."""
    return " ".join(sentence.lower().split()).rstrip(".!?")


def listed_scores(text: str, facts: Sequence[str]) -> dict[str, Any]:
    """`aspect_scores` against a user's listed facts (a sentence counts when it equals a fact up
    to case, spacing and final punctuation): the check for data with no parser."""
    return aspect_scores(text, [normalise(f) for f in facts], normalise)


def mean_scores(scores: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Each metric's mean over the answers that define it (logicality and tau skip None)."""
    out = {}
    for key in scores[0]:
        values = [s[key] for s in scores if s[key] is not None]
        out[key] = float(sum(values) / len(values)) if values else float("nan")
    return out
