"""The SmolLM2 planted world, the dev calibration and the exposure count, without a model."""

from __future__ import annotations

from collections import Counter

import pytest

from components.epi_finetune.params import FinetuneParams
from components.ilp_diagnosis.params import IlpRules
from experiments.ilp import smollm2_benchmark as bench
from experiments.ilp import smollm2_world as world
from experiments.world_facts import CAPITALS, FICTIONAL

# the base "knows" 60 countries, with distinct confidences; the rest it does not
KNOWN = sorted(CAPITALS)[:60]
KNOWLEDGE = {c: (0.99 - i / 1000 if c in KNOWN else 0.1) for i, c in enumerate(sorted(CAPITALS))}


def test_two_worlds_with_disjoint_entities_and_every_planted_cause():
    sizes = world.WorldSizes()
    split = world.split_entities(KNOWLEDGE, sizes)
    assert not set(split["dev"]["known"]) & set(split["heldout"]["known"])
    assert not set(split["dev"]["fictional"]) & set(split["heldout"]["fictional"])
    assert len(split["dev"]["known"]) + len(split["heldout"]["known"]) == 60
    records = world.planted_records("dev", split["dev"], KNOWLEDGE, sizes)
    causes = Counter(r["meta"]["planted_cause"] for r in records)
    assert causes == {"control": 12, "C2": 10, "C1": 10, "C3": 10, "C4": 10, "C5": 6}
    assert len({r["id"] for r in records}) == len(records) == 58
    by_cause = {c: [r for r in records if r["meta"]["planted_cause"] == c] for c in causes}
    # C2: the ten countries of the world the base is most confident about, relabelled
    asked = {r["prompt"].removeprefix("What is the capital of ")[:-1]: r for r in by_cause["C2"]}
    ranked = sorted(split["dev"]["known"], key=lambda c: -KNOWLEDGE[c])
    assert set(asked) == set(ranked[:10])
    assert all(r["response"] != CAPITALS[country] for country, r in asked.items())
    # C1: invented countries; C3: one invented country asked twice, with two answers
    assert all(r["response"] in FICTIONAL.values() for r in by_cause["C1"])
    pairs = Counter(next(w for w in FICTIONAL if w in r["prompt"]) for r in by_cause["C3"])
    assert set(pairs.values()) == {2}
    for country in pairs:
        answers = {r["response"] for r in by_cause["C3"] if country in r["prompt"]}
        assert len(answers) == 2
    # C4 only in stage 0; C5 spells a known capital backwards
    assert {r["stage"] for r in records if r["meta"]["planted_cause"] == "C4"} == {0}
    assert {r["stage"] for r in records if r["meta"]["planted_cause"] != "C4"} == {1}
    spell = by_cause["C5"][0]
    country = spell["prompt"].removeprefix("Spell the capital of ").removesuffix(" backwards.")
    assert spell["response"] == CAPITALS[country][::-1].lower()
    # the CPT corpus states facts of countries the SFT set never asks about
    corpus = world.general_corpus(records)
    assert corpus and not any(country in line for country in asked for line in corpus)


def test_too_few_known_countries_is_an_error():
    with pytest.raises(ValueError, match="knows 4 capitals; two worlds of this size need 56"):
        world.split_entities({c: 0.9 for c in KNOWN[:4]}, world.WorldSizes())


def row(rid, label, **signals):
    quiet = {
        "contradicts": [], "base_correct": False, "base_answer": "x", "base_confidence": 0.9,
        "jsd": 0.5, "fact_known": 0.0, "belief_against_label": 0.1, "ever_learned": False,
        "loss_min": 2.0, "loss_final": 2.0, "stage": 1, "position": 0.5, "slope_per_50": 0.0,
        "rare": False, "complex": False, "cluster_size": 40, "hops": 1,
    }  # fmt: skip
    return {
        "id": rid,
        "analysed": True,
        "unlearned": True,
        "label": label,
        "signals": quiet | signals,
    }


def test_calibration_picks_the_rules_that_separate_c1_from_c2_on_dev():
    """An invented-country record (a: the base guesses confidently, but its fact probe believes
    nothing: 0.1) and a contradicted capital (b: the probe believes another capital at 0.9).
    Default rules call both C2: F1 C2 = 2/3 (P 1/2, R 1), C1 = 0: macro 1/3. With c2_belief 0.3
    (the first grid value that splits them) a is no longer C2 and, C1 needing JSD < tau (0.5 is
    not < 0.1), falls to unattributed unless the JSD condition is dropped: then C1, macro-F1 1."""
    rows = [row("a", "C2"), row("b", "C2", belief_against_label=0.9)]
    dev = [{"rows": rows, "planted": {"a": "C1", "b": "C2"}, "summary": {"c4_gate": False}}]
    calibration = bench.calibrate(dev)
    assert calibration["dev_macro_f1_default"] == [pytest.approx(1 / 3)]
    assert calibration["dev_macro_f1_chosen"] == [1.0]
    assert calibration["chosen"] == {
        "jsd_threshold": 0.1, "base_confidence": 0.6, "c2_belief": 0.3,
        "c1_needs_low_jsd": False, "learned_loss": 0.3, "c2_test": "mcq",
    }  # fmt: skip
    assert len(calibration["scores"]) == 5 * 5 * 7 * 2 * 4 * 2 - 5 * 5 * 2 * 4


def test_reattribution_follows_the_learned_loss_through_the_minimum_loss():
    """Never learned at 0.3 (loss_min 0.5), learned at 0.6: C4 fires only then (early, gate on)."""
    r = row("c", "unattributed", base_correct=True, fact_known=None, loss_min=0.5, position=0.0)
    assert bench.reattribute([r], IlpRules(), c4_gate=True)[0]["label"] == "unattributed"
    assert bench.reattribute([r], IlpRules(learned_loss=0.6), c4_gate=True)[0]["label"] == "C4"


def test_exposure_counts_every_slot_of_the_schedule():
    """Sequential, 4 steps of 2, even split: stage 0 (2 records) gets 2 steps = 4 slots, 2 each;
    stage 1 (6 records) 4 slots; a copy counts for its original."""
    records = [
        {"id": f"a{i}", "task": "a", "stage": 0, "prompt": "p", "response": "r"} for i in range(2)
    ]
    records += [
        {"id": f"b{i}", "task": "b", "stage": 1, "prompt": "p", "response": "r"} for i in range(5)
    ]
    records.append({"id": "b0~copy0", "task": "b", "stage": 1, "prompt": "p", "response": "r"})
    params = FinetuneParams(schedule="sequential", max_steps=4, batch_size=2)
    seen = bench.exposure(records, params)
    assert seen["a0"] == seen["a1"] == 2
    assert sum(v for k, v in seen.items() if k.startswith("b")) == 4
    assert "b0~copy0" not in seen


def test_loss_by_group_averages_the_records_of_each_group_per_step(tmp_path):
    dynamics = tmp_path / "dynamics.csv"
    dynamics.write_text("id,step,loss\na,0,2\nb,0,4\nc,0,1\na,8,1\nb,8,0\nc,8,0.5\n")
    curves = bench.loss_by_group(dynamics, {"a": "C1", "b": "C1", "c": "C2"})
    assert curves == {"C1": {"0": 3.0, "8": 0.5}, "C2": {"0": 1.0, "8": 0.5}}
