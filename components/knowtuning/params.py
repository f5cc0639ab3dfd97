"""KnowTuning's sections: knowtuning_data (the entity world or the user's records) and knowtuning
(knowledge augmentation, knowledge comparison, evaluation). Every `[D]` value of the method's spec
is a field here with the spec's default; the comments say which values are the paper's. The base
model (`knowtuning_base`, pretrain's params) and the SFT runs (`knowtuning_sft`, finetune's) are
sections of the steps that run them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from components.common.params import LoraParams, StrictModel, step_schema
from components.common.preference import PreferenceParams

Aspect = Literal["completeness", "factuality", "logicality"]
# the paper's recipe: LoRA on the attention's query and value projections
PAPER_LORA = LoraParams(enabled=True, r=16, alpha=32, target_modules=("q_proj", "v_proj"))


class KnowTuningDataParams(StrictModel):
    """knowtuning_data: the entity world (world.py), or the user's JSONL records."""

    seed: int = 0
    entities: int = Field(60, gt=1, le=400, description="train + test entities, kinds in turn")
    test_entities: int = Field(15, gt=0, description="held out: facts only in the corpus")
    # the tiny base's corpus: documents per entity, each fact in a document with its attribute's
    # probability, drawn in `presence` (spec: each fact 3-8 times; 8 x [0.4, 1.0] = 3.2-8)
    documents: int = Field(8, gt=0)
    presence: tuple[float, float] = (0.4, 1.0)
    eval_entities: int = Field(10, gt=0, description="train entities the SFT monitor scores")
    tokenizer_vocab_size: int = Field(512, ge=260)
    max_prompt_chars: int = Field(256, gt=0)
    max_response_chars: int = Field(1024, gt=0)
    # the user's records (SFT JSONL; optional meta.facts: the answer's atomic facts, in order);
    # given, they replace the world: train_file trains, test_file is scored
    train_file: str | None = None
    test_file: str | None = None

    @model_validator(mode="after")
    def _check(self) -> KnowTuningDataParams:
        low, high = self.presence
        if not 0 < low <= high <= 1:
            raise ValueError("knowtuning_data.presence must be (low, high), 0 < low <= high <= 1")
        if self.test_entities >= self.entities:
            raise ValueError("knowtuning_data.test_entities must leave training entities")
        if (self.train_file is None) != (self.test_file is None):
            raise ValueError("knowtuning_data: give both train_file and test_file, or neither")
        return self


class KaParams(StrictModel):
    """Fine-grained knowledge augmentation."""

    # fine_grained: the paper's v3 (perplexity-selected facts rewritten into QA pairs); triples:
    # v1's explicit knowledge generation (the answers plus (q, a) -> triples records, 50/50)
    method: Literal["fine_grained", "triples"] = "fine_grained"
    hard_fraction: float = Field(0.5, gt=0, le=1)  # alpha [D]: share of facts kept per answer
    keep_original: bool = True  # [D]: D_KA = D_train + fine-grained pairs (False: pairs only)
    # template: the world's own question per fact; generation: the base model writes it
    rewriter: Literal["template", "generation"] = "template"
    max_length: int = Field(128, gt=0)  # tokens of question + fact in the perplexity pass


class KcParams(StrictModel):
    """Coarse-grained knowledge comparison: DPO on (answer, worse answer) pairs, one negative per
    aspect and training answer, from the KA model (`init`)."""

    aspects: tuple[Aspect, ...] = ("completeness", "factuality", "logicality")
    delete_ratio: float = Field(0.5, gt=0, lt=1)  # rho [D]
    revised_facts: tuple[int, int] = (1, 2)  # m [D]: facts falsified, drawn in this range
    init: Literal["ka", "sft"] = "ka"  # the paper's: KA (sft = the "KC without KA" ablation)
    # the paper's: beta 0.1 (LLaMA-Factory default), dpo_ftx 0.2, lr 1e-5, 1 epoch, cosine
    dpo: PreferenceParams = PreferenceParams(
        max_steps=60, batch_size=8, learning_rate=1e-4, max_length=160, lora=PAPER_LORA
    )

    @model_validator(mode="after")
    def _check(self) -> KcParams:
        low, high = self.revised_facts
        if not 0 < low <= high:
            raise ValueError("knowtuning.kc.revised_facts must be (low, high), 0 < low <= high")
        if not self.aspects or len(set(self.aspects)) != len(self.aspects):
            raise ValueError("knowtuning.kc.aspects must name each aspect at most once")
        return self


class EvaluateParams(StrictModel):
    max_new_tokens: int = Field(96, gt=0)
    batch_size: int = Field(32, gt=0)


class KnowTuningParams(StrictModel):
    """The method's own stages (augment, compare, evaluate). The base model and the two SFT runs
    are the pretrain and finetune steps, configured by `knowtuning_base` and `knowtuning_sft`."""

    seed: int = 0
    ka: KaParams = KaParams()
    kc: KcParams = KcParams()
    evaluate: EvaluateParams = EvaluateParams()


KnowTuningDataStep = step_schema("KnowTuningDataStep", knowtuning_data=KnowTuningDataParams)
KnowTuningStep = step_schema("KnowTuningStep", knowtuning=KnowTuningParams)
