"""ATM's sections: atm_data (the people world, or the user's corpus and questions) and atm_retrieve
(the retriever). Every `[D]` value of the method's spec is a field with the spec's default; the
comments say which values are the paper's."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from components.common.params import StrictModel, step_schema


class AtmDataParams(StrictModel):
    """atm_data: the people world (world.py), or the user's JSONL corpus and questions."""

    seed: int = 0
    people: int = Field(120, gt=3, le=5000, description="spec: 3,000; ours: the demo's size")
    twin_share: float = Field(0.2, ge=0, le=1)  # spec: 20 % with a near-duplicate name
    popular_share: float = Field(0.3, ge=0, le=1)  # spec: 30 % popular
    popular_repeats: int = Field(5, ge=1)  # spec: popular bios 5x in the pretraining corpus
    split_shares: tuple[float, float] = (
        0.67,
        0.08,
    )  # train, dev (test: the rest); spec 2000/250/750
    max_text_chars: int = Field(2000, gt=0)
    tokenizer_vocab_size: int = Field(1024, ge=260)  # tiny profile (spec: 4096)
    # the user's data: corpus JSONL (id, title, text) and questions JSONL (id, question, answers,
    # split, optional gold: ids of the documents that answer it); given, they replace the world
    corpus_file: str | None = None
    questions_file: str | None = None

    @model_validator(mode="after")
    def _check(self) -> AtmDataParams:
        if (self.corpus_file is None) != (self.questions_file is None):
            raise ValueError("atm_data: give both corpus_file and questions_file, or neither")
        if sum(self.split_shares) >= 1:
            raise ValueError("atm_data.split_shares (train, dev) must leave a test share")
        return self


class RetrieveParams(StrictModel):
    """atm_retrieve: the paper retrieves with Contriever; ours is MiniLM (offline), BM25 the
    lexical baseline. Both are always scored; `retriever` feeds the generator."""

    retriever: Literal["dense", "bm25"] = "dense"
    top_k: int = Field(5, gt=0)  # spec (tiny world): top-5; the paper: top-10
    recall_at: tuple[int, ...] = (1, 3, 5, 10)
    batch_size: int = Field(64, gt=0)
    # the generator's warm-up SFT records written beside the contexts: the paper's code mixes
    # 30 % closed-book questions into RAG QA (gold document at a random position)
    closed_book_share: float = Field(0.3, ge=0, le=1)
    seed: int = 0


AtmDataStep = step_schema("AtmDataStep", atm_data=AtmDataParams)
AtmRetrieveStep = step_schema("AtmRetrieveStep", atm_retrieve=RetrieveParams)
