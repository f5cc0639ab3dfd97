"""The generator's prompt and warm-up records: the documents as the authors list them, the gold
document at a uniformly random position, the closed-book share."""

from __future__ import annotations

import random
from collections import Counter

from components.atm.prompts import rag_prompt, warmup_records, with_gold_at_random

CTXS = [{"id": f"d{i}", "title": f"T{i}", "text": f"x{i}.", "hasanswer": i == 0} for i in range(4)]


def test_prompt_lists_documents_then_the_question():
    assert rag_prompt("Who?", CTXS[:2]) == (
        "Answer the question with a very short phrase, using the search results below; some of "
        "them may be irrelevant.\nKnowledge:\n[1] TITLE T0 # TEXT x0.\n[2] TITLE T1 # TEXT x1.\n"
        "Question: Who?"
    )
    assert rag_prompt("Who?", []) == "Answer the question with a very short phrase.\nQuestion: Who?"


def test_gold_moves_to_every_position_and_the_rest_keep_their_order():
    rng = random.Random(0)
    positions = Counter()
    for _ in range(800):
        moved = with_gold_at_random(CTXS, {"d0"}, rng)
        positions[[c["id"] for c in moved].index("d0")] += 1
        assert [c["id"] for c in moved if c["id"] != "d0"] == ["d1", "d2", "d3"]
    assert set(positions) == {0, 1, 2, 3} and min(positions.values()) > 150
    # no gold ids: the answer-bearing document is the one moved; none at all: unchanged
    assert with_gold_at_random(CTXS[1:], set(), rng) == CTXS[1:]


def test_warmup_mixes_closed_book_records_by_share():
    questions = [
        {"id": f"q{i}", "question": "Who?", "answers": ["x0"], "gold": ["d0"], "ctxs": CTXS}
        for i in range(1000)
    ]
    records = warmup_records(questions, 0.3, random.Random(1))
    closed = [r for r in records if r["task"] == "closed_book"]
    assert 0.26 < len(closed) / 1000 < 0.34
    assert all("Knowledge:" not in r["prompt"] for r in closed)
    assert all(r["response"] == "x0" for r in records)
