"""KnowTuning's per-record step logic (KA pairs, KC pairs, the user's facts) and a step reused
under another params section, by hand-computed cases."""

from __future__ import annotations

import random

import pytest

from components.common.cli import section_map
from components.common.io import ProjectError
from components.common.params import load_params
from components.epi_finetune.params import FinetuneStep
from components.knowtuning import world
from components.knowtuning.augment import template_rewriter
from components.knowtuning.augment_step import augment_record
from components.knowtuning.compare_step import comparison_pairs
from components.knowtuning.data_step import qa_record, with_facts
from components.knowtuning.metrics import entity_scores
from components.knowtuning.params import KcParams
from tests.unit.test_knowtuning_world import FLU, S1, S2, S3, S4

RECORD = qa_record(FLU, world.ANSWER_QUESTION, "train")


def test_qa_record_carries_the_facts_and_chain():
    assert RECORD["prompt"] == "Tell me about Kobami."
    assert RECORD["response"] == f"{S1} {S2} {S3} {S4}"
    assert RECORD["meta"]["facts"] == [S1, S2, S3, S4]
    assert RECORD["meta"]["chain"][1] == ["spread", "Rivir", "Samist"]


def test_augment_keeps_the_hardest_half_as_fine_grained_pairs():
    # perplexities 2, 9, 3, 8: ceil(0.5 * 4) = 2 hardest are facts 1 and 3
    entry, sft = augment_record(RECORD, [2.0, 9.0, 3.0, 8.0], 0.5, template_rewriter("Kobami"))
    assert [f["hard"] for f in entry["facts"]] == [False, True, False, True]
    assert [(r["prompt"], r["response"]) for r in sft] == [
        ("How does Rivir spread?", S2),
        ("What treats Teache?", S4),
    ]
    assert {r["task"] for r in sft} == {"fine_grained_qa"}


def test_comparison_pairs_one_per_aspect_each_worse_in_its_own_aspect():
    pools = {f.attribute: [f.value, f.value + "x"] for f in FLU.facts}
    revise = world.value_reviser("Kobami", pools)
    pairs = comparison_pairs(RECORD, KcParams(), revise, random.Random(0))
    assert [p["meta"]["aspect"] for p in pairs] == ["completeness", "factuality", "logicality"]
    assert {p["chosen"] for p in pairs} == {RECORD["response"]}
    scores = {p["meta"]["aspect"]: entity_scores(p["rejected"], FLU) for p in pairs}
    assert scores["completeness"]["completeness"] == 0.5  # delete_ratio 0.5 of 4 facts
    assert scores["factuality"]["error_rate"] > 0
    assert scores["logicality"]["logicality"] < 1 and scores["logicality"]["completeness"] == 1


def test_comparison_pairs_honour_the_aspects_ablation():
    revise = world.value_reviser("Kobami", {})
    pairs = comparison_pairs(RECORD, KcParams(aspects=("logicality",)), revise, random.Random(0))
    assert [p["meta"]["aspect"] for p in pairs] == ["logicality"]


def test_user_facts_must_be_a_list_of_strings_naming_line_and_field():
    record = {"line": 7, "prompt": "q", "response": "A. B.", "meta": {"facts": ["A.", ""]}}
    with pytest.raises(ProjectError, match=r"u.jsonl:7 \[meta.facts\]"):
        with_facts([record], "u.jsonl")
    (filled,) = with_facts([{**record, "meta": {}}], "u.jsonl")
    assert filled["meta"]["facts"] == ["A.", "B."]


def test_a_step_reads_its_section_from_another_one(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("knowtuning_sft:\n  method: full\n  max_steps: 7\n")
    loaded = load_params(params, [], FinetuneStep, section_map(["finetune=knowtuning_sft"]))
    assert (loaded.finetune.method, loaded.finetune.max_steps) == ("full", 7)
    params.write_text("knowtuning_sft:\n  max_steps: -1\n")
    with pytest.raises(ProjectError, match=r"\[knowtuning_sft.max_steps\]"):
        load_params(params, [], FinetuneStep, section_map(["finetune=knowtuning_sft"]))
    with pytest.raises(ProjectError, match="section not found"):
        load_params(params, [], FinetuneStep, section_map(["finetune=nowhere"]))


def test_registry_score_and_the_scorer_of_world_and_user_records():
    from components.knowtuning.evaluate_step import knowledge_score, score

    # (completeness 0.6 + (1 - error rate 0.2)) / 2 = 0.7
    assert knowledge_score({"completeness": 0.6, "error_rate": 0.2}) == pytest.approx(0.7)
    # a world record parses "it" sentences; a user record matches its listed facts verbatim
    assert score(f"{S1} {S2}", RECORD)["correct_facts"] == 2
    user = {"meta": {"facts": [S1, S2]}}
    assert score(f"{S1} {S3}", user)["correct_facts"] == 1
