"""Putting fabrications into a retrieved list: for MITO's training rows and for the test-time
attacks every arm is evaluated on.

- `insert`: fabrications at the top of the list (the paper's test condition) or each at a random
  position; marked `is_fab` with the value they assert.
- `perturb`: the spec's MITO data default: non-gold genuine documents dropped with `drop_ratio`
  and duplicated with `duplicate_ratio`, then the whole list permuted (the gold document is never
  dropped).
- `template_fabrications`: the world's template fabricator. With the held-out templates it is
  the test-time fabricator that differs from the trained attacker, each fabrication with its own
  wrong value, or all sharing one ("corroborated", the hardest); with the training templates it
  makes the Static-Aug baseline's fabrications.
- `counterfactuals`: the fabricator for any corpus (a user's data has no templates): copies of
  the retrieved documents that state the answer, the answer replaced by a wrong one drawn from
  other questions' answers.
- `adopted`: the prediction is a value a fabrication asserted."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, Literal

from components.atm import world
from components.atm.metrics import normalize_answer

Position = Literal["top", "random"]


def insert(
    ctxs: Sequence[dict[str, Any]],
    fabrications: Sequence[dict[str, Any]],
    position: Position,
    rng: random.Random,
) -> list[dict[str, Any]]:
    fakes = [{**f, "is_fab": True} for f in fabrications]
    if position == "top":
        return fakes + list(ctxs)
    out = list(ctxs)
    for fake in fakes:
        out.insert(rng.randint(0, len(out)), fake)
    return out


def perturb(
    ctxs: Sequence[dict[str, Any]],
    gold: set[str],
    drop_ratio: float,
    duplicate_ratio: float,
    rng: random.Random,
) -> list[dict[str, Any]]:
    kept = [c for c in ctxs if c.get("is_fab") or c["id"] in gold or rng.random() >= drop_ratio]
    genuine = [c for c in kept if not c.get("is_fab") and c["id"] not in gold]
    duplicates = [dict(c) for c in genuine if rng.random() < duplicate_ratio]
    out = kept + duplicates
    rng.shuffle(out)
    return out


def template_fabrications(
    question: world.Question,
    people: dict[str, world.Person],
    values: dict[str, Sequence[str]],
    count: int,
    corroborated: bool,
    rng: random.Random,
    templates: Sequence[tuple[str, str]] = world.HELDOUT_FABRICATIONS,
) -> list[dict[str, Any]]:
    """`count` documents from `templates` (distinct while they last), each asserting a wrong
    value: its own draw, or one shared draw when `corroborated`."""
    person = people[question.person]
    shared = world.wrong_value(person, question.relation, people, values, rng)
    templates = rng.sample(list(templates), min(count, len(templates)))
    out = []
    for i in range(count):
        value = (
            shared
            if corroborated
            else world.wrong_value(person, question.relation, people, values, rng)
        )
        template = templates[i % len(templates)]
        document = world.fabricate(question, value, template, f"fab-{question.id}-{i}")
        out.append(
            {"id": document.id, "title": document.title, "text": document.text, "fab_value": value}
        )
    return out


def counterfactuals(
    ctxs: Sequence[dict[str, Any]],
    answers: Sequence[str],
    pool: Sequence[str],
    count: int,
    rng: random.Random,
    doc_id: str,
) -> list[dict[str, Any]]:
    """`count` counterfactual documents: a retrieved document that states an answer (in turn),
    every answer in it replaced by its own wrong value from `pool`. None when no retrieved
    document states an answer in its text, or `pool` has no wrong value."""
    gold = {normalize_answer(a) for a in answers}
    wrong = sorted({v for v in pool if normalize_answer(v) not in gold})
    sources = [c for c in ctxs if any(a in c["text"] for a in answers)]
    out = []
    for i in range(count if sources and wrong else 0):
        source, value = sources[i % len(sources)], rng.choice(wrong)
        text = source["text"]
        for answer in sorted(answers, key=len, reverse=True):
            text = text.replace(answer, value)
        out.append(
            {"id": f"{doc_id}-{i}", "title": source["title"], "text": text, "fab_value": value}
        )
    return out


def adopted(prediction: str, fabrications: Sequence[dict[str, Any]]) -> bool:
    values = {normalize_answer(f["fab_value"]) for f in fabrications if f.get("fab_value")}
    return normalize_answer(prediction) in values
