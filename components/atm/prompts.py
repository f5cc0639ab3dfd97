"""ATM's generator prompt and its warm-up SFT records.

The prompt follows the authors' `atm_instruct` (paraphrased): answer with a very short phrase,
using the search results, some of which may be irrelevant; the documents are listed as
`TITLE <title> # TEXT <text>`. The closed-book prompt (`atm_instruct_close`) has no documents.
Warm-up SFT (G_0) mixes both: a `closed_book_share` of records without documents, the rest with
the retrieved list and the gold document moved to a random position, so position is no cue."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

RAG_INSTRUCTION = (
    "Answer the question with a very short phrase, using the search results below; some of them "
    "may be irrelevant."
)
CLOSED_INSTRUCTION = "Answer the question with a very short phrase."


def document_line(number: int, ctx: dict[str, Any]) -> str:
    return f"[{number}] TITLE {ctx['title']} # TEXT {ctx['text']}"


def rag_prompt(question: str, ctxs: Sequence[dict[str, Any]]) -> str:
    if not ctxs:
        return f"{CLOSED_INSTRUCTION}\nQuestion: {question}"
    knowledge = "\n".join(document_line(i, c) for i, c in enumerate(ctxs, start=1))
    return f"{RAG_INSTRUCTION}\nKnowledge:\n{knowledge}\nQuestion: {question}"


def with_gold_at_random(ctxs: list[dict], gold: set[str], rng: random.Random) -> list[dict]:
    """The list with its first gold (or answer-bearing) document moved to a random position; a
    list without one is returned as it is."""
    index = next(
        (i for i, c in enumerate(ctxs) if c["id"] in gold or (not gold and c["hasanswer"])), None
    )
    if index is None:
        return list(ctxs)
    rest = ctxs[:index] + ctxs[index + 1 :]
    rest.insert(rng.randrange(len(ctxs)), ctxs[index])
    return rest


def warmup_records(
    questions: Sequence[dict[str, Any]], closed_book_share: float, rng: random.Random
) -> list[dict[str, Any]]:
    """G_0's SFT records (the project's SFT format), from retrieved questions (`ctxs`)."""
    records = []
    for q in questions:
        closed = rng.random() < closed_book_share
        ctxs = [] if closed else with_gold_at_random(q["ctxs"], set(q.get("gold", [])), rng)
        records.append(
            {
                "id": q["id"],
                "task": "closed_book" if closed else "rag_qa",
                "stage": 0,
                "prompt": rag_prompt(q["question"], ctxs),
                "response": q["answers"][0],
                "meta": {"answers": q["answers"]},
            }
        )
    return records
