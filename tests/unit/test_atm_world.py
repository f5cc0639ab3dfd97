"""ATM's world: documents, questions, twins, splits and fabrications, by the properties a
retrieval-augmented QA benchmark needs (every answer readable, test people never trained)."""

from __future__ import annotations

import random

from components.atm.world import (
    HELDOUT_FABRICATIONS,
    RELATIONS,
    TRAIN_FABRICATIONS,
    build_world,
    fabricate,
    with_article,
    wrong_value,
)

WORLD = build_world(60, seed=3)
PEOPLE = {p.name: p for p in WORLD.people}
DOCS = {d.id: d for d in WORLD.corpus}


def test_two_documents_and_four_questions_per_person():
    assert len(WORLD.corpus) == 2 * 60
    assert sum(len(q) for q in WORLD.questions.values()) == 4 * 60
    assert build_world(60, seed=3) == WORLD


def test_every_answer_is_stated_by_its_gold_documents_only():
    for question in (q for qs in WORLD.questions.values() for q in qs):
        person = PEOPLE[question.person]
        assert question.answer == person.values[question.relation]
        for doc_id in question.gold:
            assert question.person in DOCS[doc_id].passage
            assert question.answer in DOCS[doc_id].text
    # the bio and the news item together state all four facts
    for person in WORLD.people:
        slug = person.name.lower()
        text = DOCS[f"{slug}-bio"].text + " " + DOCS[f"{slug}-news"].text
        assert all(person.values[r.name] in text for r in RELATIONS)


def test_splits_are_disjoint_in_people():
    people = {split: {q.person for q in qs} for split, qs in WORLD.questions.items()}
    assert not people["train"] & people["test"] and not people["dev"] & people["test"]
    assert len(people["train"]) == round(0.67 * 60) and len(people["dev"]) == round(0.08 * 60)


def test_twins_come_in_pairs_one_syllable_apart():
    twins = [p for p in WORLD.people if p.twin]
    assert twins and all(PEOPLE[p.twin].twin == p.name for p in twins)
    for person in twins:
        assert len(person.name) == len(person.twin)
        pairs = zip(person.name, person.twin, strict=True)
        differing = [i for i, (a, b) in enumerate(pairs) if a != b]
        assert 1 <= len(differing) <= 2
        assert max(differing) - min(differing) <= 1


def test_popular_bios_are_repeated_in_the_pretraining_corpus():
    popular = [p for p in WORLD.people if p.popular]
    assert len(WORLD.pretraining) == 5 * len(popular)
    assert DOCS[f"{popular[0].name.lower()}-bio"].text in WORLD.pretraining


def test_fabrication_asserts_a_wrong_value_about_the_same_person():
    rng = random.Random(0)
    for question in WORLD.questions["test"][:20]:
        value = wrong_value(PEOPLE[question.person], question.relation, PEOPLE, WORLD.values, rng)
        assert value != question.answer and value in WORLD.values[question.relation]
        document = fabricate(question, value, HELDOUT_FABRICATIONS[0], "fab-0")
        assert question.person in document.text and value in document.text
    assert not set(TRAIN_FABRICATIONS) & set(HELDOUT_FABRICATIONS)


def test_twin_value_is_the_wrong_value_half_the_time():
    person = next(p for p in WORLD.people if p.twin)
    twin = PEOPLE[person.twin]
    relation = next(r.name for r in RELATIONS if twin.values[r.name] != person.values[r.name])
    rng = random.Random(1)
    draws = [wrong_value(person, relation, PEOPLE, WORLD.values, rng) for _ in range(400)]
    assert 0.45 < draws.count(twin.values[relation]) / 400 < 0.6  # 0.5 + 0.5 / (|set| - 1)


def test_article():
    assert (with_article("optician"), with_article("baker")) == ("an optician", "a baker")
