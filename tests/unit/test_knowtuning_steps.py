"""KnowTuning's per-record step logic (KA pairs, KC pairs, the user's facts) and a step reused
under another params section, by hand-computed cases."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from components.common.cli import section_map
from components.common.io import ProjectError, read_jsonl
from components.common.params import load_params
from components.epi_finetune.params import FinetuneStep
from components.knowtuning import world
from components.knowtuning.augment import template_rewriter, triples_record
from components.knowtuning.augment_step import augment_record, record_triples
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


def test_v1_triples_record_asks_for_the_chain_as_triples():
    triples = record_triples(RECORD, Path("train.jsonl"))
    assert triples[:2] == [["Kobami", "cause", "Rivir"], ["Rivir", "spread", "Samist"]]
    made = triples_record(RECORD, [["Kobami", "cause", "Rivir"], ["Rivir", "spread", "Samist"]])
    assert made["prompt"] == (
        f"Question: Tell me about Kobami.\nAnswer: {RECORD['response']}\n"
        "List the knowledge triples of the answer."
    )
    assert made["response"] == "(Kobami, cause, Rivir); (Rivir, spread, Samist)"
    assert (made["id"], made["task"]) == ("train-Kobami-triples", "knowledge_triples")


def test_v1_needs_triples_for_a_users_record_and_names_the_field():
    user = {"id": "u-3", "prompt": "q", "response": "A.", "meta": {"facts": ["A."]}}
    with pytest.raises(ProjectError, match=r"train.jsonl \[meta.triples\]: record 'u-3'"):
        record_triples(user, Path("train.jsonl"))
    given = {**user, "meta": {"facts": ["A."], "triples": [["s", "r", "o"]]}}
    assert record_triples(given, Path("train.jsonl")) == [["s", "r", "o"]]


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
    for triples in ([], [["s", "r"]], [["s", "r", 3]], "s r o"):
        with pytest.raises(ProjectError, match=r"u.jsonl:7 \[meta.triples\]"):
            with_facts([{**record, "meta": {"triples": triples}}], "u.jsonl")


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


def test_v1_augment_step_adds_one_triples_record_per_answer_without_a_model(tmp_path, mlflow_uri):
    from components.knowtuning import augment_step, data_step
    from components.knowtuning.params import KaParams, KnowTuningDataParams, KnowTuningParams

    data = tmp_path / "data"
    data_step.run(KnowTuningDataParams(entities=6, test_entities=2), "tiny", data, tmp_path / "r")
    params = KnowTuningParams(ka=KaParams(method="triples"))
    # no base model on disk: the v1 method never loads one
    metrics = augment_step.run(params, "tiny", data, tmp_path / "none", tmp_path / "ka", tmp_path)
    train = read_jsonl(tmp_path / "ka/train.jsonl")
    assert metrics["answers"] == metrics["augmented_records"] == 4
    assert [r["task"] for r in train].count("knowledge_triples") == len(train) // 2
    assert train[-1]["response"].count("); (") == 4  # five facts, five triples
