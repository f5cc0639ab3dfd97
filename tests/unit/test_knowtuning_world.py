"""KnowTuning's world, negatives, KA selection and aspect metrics, pinned by hand-computed cases."""

from __future__ import annotations

import random

import pytest

from components.knowtuning import augment, negatives, world
from components.knowtuning.metrics import entity_scores, listed_scores, mean_scores
from components.knowtuning.world import Entity, Fact

FLU = Entity(
    "Kobami",
    "disease",
    (
        Fact("cause", "Kobami", "Rivir"),
        Fact("spread", "Rivir", "Samist"),
        Fact("symptom", "Samist", "Teache"),
        Fact("treatment", "Teache", "Guzol"),
    ),
)
S1 = "It is caused by Rivir."
S2 = "Rivir spreads through Samist."
S3 = "Because of Samist, it brings Teache."
S4 = "Teache is treated with Guzol."


def test_answer_is_the_chain_in_order_and_parses_back():
    assert world.answer(FLU) == f"{S1} {S2} {S3} {S4}"
    assert [world.parse_fact(s, "Kobami") for s in (S1, S2, S3, S4)] == list(FLU.facts)


def test_parse_reads_the_name_or_it_and_rejects_other_entities_and_free_text():
    assert world.parse_fact("Kobami is caused by Rivir.", "Kobami") == FLU.facts[0]
    assert world.parse_fact("Because of Samist, Kobami brings Teache.", "Kobami") == FLU.facts[2]
    assert world.parse_fact("Lotesa is caused by Rivir.", "Kobami") is None
    assert world.parse_fact("Kobami is a disease.", "Kobami") is None


def test_world_is_deterministic_and_chains_link_each_fact_to_the_previous_value():
    first, again = world.make_world(9, seed=3), world.make_world(9, seed=3)
    assert first == again
    assert [e.kind for e in first[:3]] == ["disease", "company", "city"]
    for entity in first:
        assert entity.facts[0].prev == entity.name
        for before, after in zip(entity.facts, entity.facts[1:], strict=False):
            assert after.prev == before.value
    values = [f.value for e in first for f in e.facts]
    assert len(values) == len(set(values))  # each value belongs to one entity


def test_corpus_documents_shuffle_an_entitys_facts_by_presence():
    presence = {"cause": 1.0, "spread": 1.0, "symptom": 1e-9, "treatment": 1.0}
    lines = world.pretraining_corpus([FLU], 5, presence, 0)
    assert len(lines) == 5
    for line in lines:  # symptom never present; the other three always, in some order
        assert line.startswith("About Kobami: ")
        assert sorted(world.split_sentences(line.removeprefix("About Kobami: "))) == sorted(
            [S1, S2, S4]
        )
    assert len(set(lines)) > 1


# --- metrics: hand-computed ---


def test_perfect_answer_scores_one_everywhere():
    scores = entity_scores(world.answer(FLU), FLU)
    assert scores == {
        "sentences": 4,
        "correct_facts": 4,
        "completeness": 1.0,
        "error_rate": 0.0,
        "logicality": 1.0,
        "kendall_tau": 1.0,
    }


def test_missing_wrong_repeated_and_unparseable_sentences():
    # S2 with a wrong value, S1 twice, one free sentence, S4; S3 missing.
    text = f"{S1} Rivir spreads through Bomist. {S1} It is bad. {S4}"
    scores = entity_scores(text, FLU)
    # correct: S1 and S4 (2 of 4); 5 sentences, 3 of them incorrect (wrong, repeat, free text)
    assert scores["correct_facts"] == 2
    assert scores["completeness"] == pytest.approx(2 / 4)
    assert scores["error_rate"] == pytest.approx(3 / 5)
    # no dependency pair (k, k+1) has both facts correct: undefined
    assert scores["logicality"] is None
    # chain indices 0 and 3 at sentences 0 and 4: concordant, tau = 1
    assert scores["kendall_tau"] == pytest.approx(1.0)


def test_out_of_order_answer():
    # order S2 S1 S4 S3: pairs (0,1) reversed, (1,2) in order (S2 at 0, S3 at 3),
    # (2,3) reversed -> logicality 1/3
    scores = entity_scores(f"{S2} {S1} {S4} {S3}", FLU)
    assert scores["completeness"] == 1.0
    assert scores["logicality"] == pytest.approx(1 / 3)
    # positions of chain 0..3 = [1, 0, 3, 2]: 6 pairs, 2 discordant -> tau = (4 - 2) / 6
    assert scores["kendall_tau"] == pytest.approx(2 / 6)


def test_antecedent_must_match_too():
    # right value, wrong antecedent: not the gold fact
    assert entity_scores("Guzol spreads through Samist.", FLU)["correct_facts"] == 0


def test_empty_answer_has_no_errors_and_no_facts():
    scores = entity_scores("", FLU)
    assert (scores["sentences"], scores["error_rate"], scores["completeness"]) == (0, 0.0, 0.0)


def test_listed_facts_match_up_to_case_spacing_and_stop():
    scores = listed_scores(
        "the sky is  Blue. Grass is green! Water is dry.", ["The sky is blue.", "Grass is green."]
    )
    assert (scores["correct_facts"], scores["error_rate"], scores["logicality"]) == (2, 1 / 3, 1.0)


def test_mean_scores_skip_undefined_logicality():
    means = mean_scores(
        [{"completeness": 1.0, "logicality": None}, {"completeness": 0.5, "logicality": 0.5}]
    )
    assert means == {"completeness": 0.75, "logicality": 0.5}


# --- negatives ---


def test_delete_drops_half_keeping_order():
    kept = negatives.delete([S1, S2, S3, S4], 0.5, random.Random(0))
    assert len(kept) == 2
    assert kept == sorted(kept, key=[S1, S2, S3, S4].index)


def test_delete_keeps_at_least_one_and_drops_at_least_one():
    assert len(negatives.delete([S1, S2], 0.99, random.Random(0))) == 1
    assert len(negatives.delete([S1, S2, S3, S4], 0.01, random.Random(0))) == 3


def test_falsify_changes_only_values_of_the_same_attribute():
    pools = {"cause": ["Rivir", "Tovir"], "spread": ["Samist"], "symptom": ["Teache"]}
    pools["treatment"] = ["Guzol"]
    revise = world.value_reviser("Kobami", pools)
    out = negatives.falsify([S1, S2], 2, random.Random(0), revise)
    # only `cause` has another value; `spread` cannot be revised and stays
    assert out == ["It is caused by Tovir.", S2]


def test_shuffle_never_returns_the_chain_order():
    for seed in range(20):
        out = negatives.shuffle([S1, S2], random.Random(seed))
        assert out == [S2, S1]


def test_each_negative_lowers_its_own_aspect():
    facts = world.split_sentences(world.answer(FLU))
    pools = {f.attribute: [f.value, f.value + "x"] for f in FLU.facts}
    rng = random.Random(1)
    deleted = entity_scores(" ".join(negatives.delete(facts, 0.5, rng)), FLU)
    false = " ".join(negatives.falsify(facts, 1, rng, world.value_reviser("Kobami", pools)))
    shuffled = entity_scores(" ".join(negatives.shuffle(facts, rng)), FLU)
    assert deleted["completeness"] == 0.5 and deleted["error_rate"] == 0.0
    assert entity_scores(false, FLU)["error_rate"] == pytest.approx(1 / 4)
    assert shuffled["completeness"] == 1.0 and shuffled["logicality"] < 1.0


# --- knowledge augmentation ---


def test_hardest_keeps_ceil_fraction_in_answer_order():
    assert augment.hardest([1.0, 9.0, 3.0, 7.0, 2.0], 0.5) == [1, 2, 3]  # ceil(2.5) = 3
    assert augment.hardest([5.0, 5.0, 1.0], 0.3) == [0]  # tie: the earlier fact


def test_template_rewriter_asks_the_facts_own_question():
    rewrite = augment.template_rewriter("Kobami")
    assert rewrite(S2, "Tell me about Kobami.") == ("How does Rivir spread?", S2)
    assert rewrite(S3, "") == ("What does Kobami bring because of Samist?", S3)
    assert rewrite("It is a disease.", "") is None
