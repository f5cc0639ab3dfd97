"""Fine-grained knowledge augmentation (KA): find the facts of an answer the model finds hardest
and turn each into its own question-answer pair.

    facts  = atomic facts of the answer          (`world.split_sentences`, or the user's list)
    d_k    = PPL_M(fact_k | prompt(question))     (`fact_perplexity`, M = the base model)
    hard   = the ceil(alpha * n) facts of highest d_k
    pairs  = rewrite(fact, question) for each hard fact  (a swappable `Rewriter`)

Two rewriters: `template_rewriter` for a world whose facts parse (ours), `generation_rewriter`
that asks a language model for the question (real data).

The paper's first version (v1) augments differently, by explicit knowledge generation: besides
answering, the model learns to list an answer's knowledge triples, `triples_record` (a 50/50
multi-task mix of q -> a and (q, a) -> "(s, r, o); ...")."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from components.knowtuning.world import fact_question, parse_fact

# (fact, the question of its answer) -> (fine-grained question, answer), None when it cannot
Rewriter = Callable[[str, str], tuple[str, str] | None]


def fact_perplexity(
    model: Any, tokenizer: Any, question: str, facts: Sequence[str], max_length: int
) -> list[float]:
    """exp(mean token cross-entropy) of each fact as the response to `question`."""
    from components.common.sft import per_record_loss  # torch: only where a model is scored

    records = [{"prompt": question, "response": fact} for fact in facts]
    return [math.exp(loss) for loss in per_record_loss(model, tokenizer, records, max_length)]


def hardest(perplexities: Sequence[float], fraction: float) -> list[int]:
    """Indices of the ceil(fraction * n) highest perplexities, in answer order (ties: earlier
    first)."""
    keep = math.ceil(fraction * len(perplexities))
    ranked = np.argsort(-np.asarray(perplexities, dtype=float), kind="stable")[:keep]
    return sorted(int(i) for i in ranked)


def template_rewriter(entity: str) -> Rewriter:
    """The world's own question for a fact sentence about `entity`; the answer is the fact."""

    def rewrite(fact: str, question: str) -> tuple[str, str] | None:
        parsed = parse_fact(fact, entity)
        return None if parsed is None else (fact_question(parsed, entity), fact)

    return rewrite


GENERATION_PROMPT = (
    "Write one short question that the following fact answers, about the topic of: {question}\n"
    "Fact: {fact}"
)


def generation_rewriter(
    model: Any, tokenizer: Any, prompt: str = GENERATION_PROMPT, max_new_tokens: int = 32
) -> Rewriter:
    """A language model writes the question (greedy, first line); the answer is the fact."""
    from components.common.sft import greedy_answers  # torch: only where a model writes

    def rewrite(fact: str, question: str) -> tuple[str, str] | None:
        text = prompt.format(fact=fact, question=question)
        (generated,) = greedy_answers(model, tokenizer, [text], max_new_tokens, batch_size=1)
        return (generated, fact) if generated else None

    return rewrite


TRIPLES_PROMPT = "Question: {question}\nAnswer: {answer}\nList the knowledge triples of the answer."


def triples_text(triples: Sequence[Sequence[str]]) -> str:
    """v1's target: "(subject, relation, object); ..." in the answer's order."""
    return "; ".join(f"({s}, {r}, {o})" for s, r, o in triples)


def triples_record(record: dict[str, Any], triples: Sequence[Sequence[str]]) -> dict[str, Any]:
    """v1's knowledge-generation SFT record for one answer: (question, answer) -> its triples."""
    return {
        "id": f"{record['id']}-triples",
        "task": "knowledge_triples",
        "stage": 0,
        "prompt": TRIPLES_PROMPT.format(question=record["prompt"], answer=record["response"]),
        "response": triples_text(triples),
        "meta": {"of": record["id"]},
    }
