"""Knowledge comparison's negatives (KC): worse versions of a correct answer, one per aspect.

Each takes the answer's atomic facts (sentences, in order) and returns a worse answer:
`delete` drops facts (completeness), `falsify` swaps values for wrong ones of the same type
(factuality), `shuffle` breaks the order (logicality). Pure functions of the facts and an RNG."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

ASPECTS = ("completeness", "factuality", "logicality")


def delete(facts: Sequence[str], ratio: float, rng: random.Random) -> list[str]:
    """Drop round(ratio * n) facts, at least one and never all; the rest keep their order."""
    n = len(facts)
    if n < 2:
        raise ValueError("deleting needs at least 2 facts (an answer with none is not a fact list)")
    drop = min(max(round(ratio * n), 1), n - 1)
    removed = set(rng.sample(range(n), drop))
    return [fact for i, fact in enumerate(facts) if i not in removed]


def falsify(
    facts: Sequence[str],
    count: int,
    rng: random.Random,
    revise: Callable[[str, random.Random], str | None],
) -> list[str]:
    """Swap `count` facts (fewer if fewer can be revised) for their false versions: `revise`
    returns a false version of one fact, or None when it cannot. Each fact is revised once (a
    language-model reviser costs a generation per fact)."""
    revised = [revise(fact, rng) for fact in facts]
    revisable = [i for i, r in enumerate(revised) if r is not None]
    if not revisable:
        raise ValueError("no fact of the answer can be revised")
    chosen = set(rng.sample(revisable, min(count, len(revisable))))
    return [revised[i] if i in chosen else fact for i, fact in enumerate(facts)]


def shuffle(facts: Sequence[str], rng: random.Random, max_tries: int = 100) -> list[str]:
    """A permutation that puts at least one fact before the fact it follows in the answer (for a
    chain, a dependency violated): any order but the original."""
    if len(facts) < 2:
        raise ValueError("shuffling needs at least 2 facts")
    order = list(range(len(facts)))
    for _ in range(max_tries):
        rng.shuffle(order)
        if order != sorted(order):
            return [facts[i] for i in order]
    # each try keeps the original order with probability 1/n! <= 1/2
    raise RuntimeError(f"no shuffle of {len(facts)} facts left the original order")
