"""The attacker's pieces by hand: document parsing, the preference rule (most misleading chosen,
least rejected), the scoring records and the seed fabrications."""

from __future__ import annotations

import random

from components.atm.attacker import (
    attacker_prompt,
    parse_document,
    preference_pair,
    scoring_records,
    seed_records,
)
from components.atm.world import build_world


def test_parse_document_and_its_fallback():
    assert parse_document("TITLE Kobami # TEXT Kobami plays the lute.") == {
        "title": "Kobami",
        "text": "Kobami plays the lute.",
    }
    assert parse_document("Kobami plays # the lute") == {
        "title": "",
        "text": "Kobami plays # the lute",
    }


def test_preference_pair_chooses_the_highest_nll_and_rejects_the_lowest():
    pair = preference_pair("q1", "p", ["a", "b", "c"], [1.5, 3.0, 0.2])
    assert (pair["chosen"], pair["rejected"]) == ("b", "c")
    assert pair["meta"] == {"chosen_nll": 3.0, "rejected_nll": 0.2}
    assert preference_pair("q1", "p", ["a", "b"], [1.0, 1.0]) is None
    assert preference_pair("q1", "p", ["a", "a"], [1.0, 2.0]) is None


def test_each_fabrication_is_scored_alone_with_the_gold_answer():
    fakes = [{"title": "K", "text": "K plays the lute."}, {"title": "K", "text": "K: drums."}]
    records = scoring_records("What does K play?", "harp", fakes)
    assert [r["response"] for r in records] == ["harp", "harp"]
    assert records[0]["prompt"].count("[1] TITLE") == 1 and "[2]" not in records[0]["prompt"]
    assert "K plays the lute." in records[0]["prompt"]


def test_seed_records_assert_a_wrong_value_in_the_document_format():
    built = build_world(30, seed=2)
    people = {p.name: p for p in built.people}
    example = {"title": "T", "text": "x."}
    questions = [
        {"id": q.id, "question": q.text, "answers": [q.answer], "ctxs": [example],
         "meta": {"person": q.person, "relation": q.relation}}
        for q in built.questions["train"][:20]
    ]  # fmt: skip
    records = seed_records(questions, people, built.values, random.Random(0))
    for record, q in zip(records, questions, strict=True):
        document = parse_document(record["response"])
        assert q["meta"]["person"] in document["text"]
        assert record["meta"]["value"] in document["text"]
        assert record["meta"]["value"] != q["answers"][0]
        assert record["prompt"] == attacker_prompt(q["question"], q["answers"], example)


def test_sampled_continuations_draw_n_per_prompt_repeatably():
    import torch

    from components.common.models import build_tiny_model
    from components.common.params import TinyModelParams
    from components.common.sft import sampled_continuations
    from components.common.tokenizer import train_bpe_tokenizer

    tokenizer = train_bpe_tokenizer(["TITLE Kobami # TEXT Kobami plays the lute."] * 4, 280)
    model = build_tiny_model(TinyModelParams(hidden_size=16, intermediate_size=32), tokenizer)

    def draw() -> list[list[str]]:
        torch.manual_seed(0)
        return sampled_continuations(model, tokenizer, ["TITLE", "Kobami"], 6, 2, 3, 0.8, 0.95)

    first = draw()
    assert [len(row) for row in first] == [3, 3]
    assert draw() == first
