"""Fabrications in a retrieved list: top and random insertion, the MITO perturbation that never
drops the gold document, the held-out fabricator (distinct values or one corroborated value) and
adoption."""

from __future__ import annotations

import random
import re
from collections import Counter

from components.atm.attacks import (
    adopted,
    counterfactuals,
    insert,
    perturb,
    template_fabrications,
)
from components.atm.world import HELDOUT_FABRICATIONS, TRAIN_FABRICATIONS, build_world

CTXS = [{"id": f"d{i}", "title": "T", "text": f"x{i}."} for i in range(4)]
FAKES = [{"id": "f0", "title": "T", "text": "lie.", "fab_value": "lute"}]


def test_insert_on_top_or_at_uniform_random_positions():
    top = insert(CTXS, FAKES, "top", random.Random(0))
    assert [c["id"] for c in top] == ["f0", "d0", "d1", "d2", "d3"] and top[0]["is_fab"]
    rng = random.Random(1)
    where = Counter(
        [c["id"] for c in insert(CTXS, FAKES, "random", rng)].index("f0") for _ in range(1000)
    )
    assert set(where) == set(range(5)) and min(where.values()) > 150


def test_perturb_keeps_gold_and_fabrications_and_permutes():
    rng = random.Random(2)
    listed = insert(CTXS, FAKES, "top", rng)
    for _ in range(200):
        out = perturb(listed, {"d2"}, drop_ratio=0.5, duplicate_ratio=0.5, rng=rng)
        ids = [c["id"] for c in out]
        assert "d2" in ids and "f0" in ids and ids.count("d2") == 1 and ids.count("f0") == 1
    # no drops or duplicates: a permutation of the list
    out = perturb(listed, {"d2"}, 0.0, 0.0, random.Random(3))
    assert sorted(c["id"] for c in out) == sorted(c["id"] for c in listed)


def test_template_fabricator_values_and_templates():
    built = build_world(30, seed=4)
    people = {p.name: p for p in built.people}
    question = built.questions["test"][0]
    rng = random.Random(5)
    plain = template_fabrications(question, people, built.values, 3, False, rng)
    shared = template_fabrications(question, people, built.values, 3, True, rng)
    assert len({f["fab_value"] for f in shared}) == 1
    for fake in plain + shared:
        assert fake["fab_value"] != question.answer and fake["fab_value"] in fake["text"]
    assert len({f["text"] for f in plain}) == 3  # three different held-out templates
    assert all(matches_a_template(f["text"], HELDOUT_FABRICATIONS) for f in plain + shared)
    static = template_fabrications(
        question, people, built.values, 2, False, rng, TRAIN_FABRICATIONS
    )
    assert all(matches_a_template(f["text"], TRAIN_FABRICATIONS) for f in static)
    assert not any(matches_a_template(f["text"], HELDOUT_FABRICATIONS) for f in static)


def matches_a_template(text: str, templates) -> bool:
    patterns = [re.compile(re.sub(r"\\\{\w+\\\}", ".+", re.escape(t)), re.I) for _, t in templates]
    return any(p.fullmatch(text) for p in patterns)


def test_adopted_compares_normalised_values():
    assert adopted("The Lute.", FAKES) and not adopted("harp", FAKES)


def test_counterfactuals_swap_every_answer_occurrence_for_a_wrong_value():
    ctxs = [
        {"id": "d2", "title": "B", "text": "Nothing about it."},
        {"id": "d1", "title": "Kobami", "text": "Kobami plays the harp. The harp is old."},
    ]
    made = counterfactuals(ctxs, ["harp"], ["The Harp", "harp", "lute"], 2, random.Random(0), "cf")
    assert [f["id"] for f in made] == ["cf-0", "cf-1"]
    for fake in made:  # "The Harp" normalises to the answer: "lute" is the only wrong value
        assert fake == {"id": fake["id"], "title": "Kobami", "fab_value": "lute",
                        "text": "Kobami plays the lute. The lute is old."}  # fmt: skip
    assert counterfactuals(ctxs[:1], ["harp"], ["lute"], 2, random.Random(0), "cf") == []
    assert counterfactuals(ctxs, ["harp"], ["harp"], 2, random.Random(0), "cf") == []
