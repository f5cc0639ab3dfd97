"""ATM's sections: atm_data (the people world, or the user's corpus and questions) and atm_retrieve
(the retriever). Every `[D]` value of the method's spec is a field with the spec's default; the
comments say which values are the paper's."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from components.common.params import StrictModel, TrainerParams, step_schema
from components.common.preference import PreferenceParams


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


class MitoParams(TrainerParams):
    """The generator turn: MITO (mito.py) on attacked and clean lists of the same question."""

    beta: float = Field(0.2, ge=0)  # the paper's code
    sft_branch: Literal["adv", "clean", "both"] = "adv"  # [D]
    kl_target: Literal["clean", "adv"] = "clean"  # [D]
    kl_norm: Literal["per_answer_token", "code_batchmean"] = "per_answer_token"  # [D]
    stopgrad_target: bool = False  # [D]
    max_steps: int = Field(300, gt=0)  # spec (tiny): 300 per iteration; the paper: 100
    batch_size: int = Field(16, gt=0)  # spec (tiny); the paper: 2 x 8 accumulation
    learning_rate: float = Field(5e-5, gt=0)  # spec (tiny); the paper: 2e-5
    max_length: int = Field(512, gt=0)
    # MITO's lists [D]: fabrications at random positions, then non-gold genuine documents dropped
    # and duplicated, the whole list permuted
    drop_ratio: float = Field(0.05, ge=0, lt=1)
    duplicate_ratio: float = Field(0.2, ge=0, le=1)


class AttackerParams(StrictModel):
    """The attacker turn: sample, score by the generator, DPO (most misleading chosen)."""

    fabrications: int = Field(5, ge=2)  # the paper's code: 5 per question
    temperature: float = Field(0.8, gt=0)  # the paper's code
    top_p: float = Field(0.95, gt=0, le=1)  # the paper's code
    max_new_tokens: int = Field(64, gt=0)  # the paper: 512 (vLLM); ours: one short document
    update: bool = True  # False: the "frozen attacker" ablation
    # the paper: beta 0.2, lr 8e-7, 1 epoch, plain DPO (no SFT term)
    dpo: PreferenceParams = PreferenceParams(
        beta=0.2, sft_weight=0.0, learning_rate=5e-5, max_steps=40, batch_size=8, max_length=384
    )


class AtmParams(StrictModel):
    """atm: the adversarial rounds."""

    seed: int = 0
    rounds: int = Field(3, ge=1, le=5)  # spec: "a few"; 3 (max 5)
    questions_per_round: int | None = Field(None, gt=0)  # None: every training question
    probe_questions: int = Field(32, gt=0)  # dev questions measuring attack strength and EM
    attacker: AttackerParams = AttackerParams()
    mito: MitoParams = MitoParams()
    generation_batch_size: int = Field(32, gt=0)
    max_answer_tokens: int = Field(16, gt=0)
    log_round_models: bool = True  # each round's generator and attacker as MLflow artifacts


AtmStep = step_schema("AtmStep", atm=AtmParams)
