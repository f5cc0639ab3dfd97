"""RLHB's sections: rlhb_data (the simulated search service's logs, or the user's) and rlhb (the
generator, the discriminator, the adversarial loop and the baselines). Every `[D]` value of the
method's spec is a field with the spec's default; where our CPU demo differs, params.yaml says so.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from components.common.params import LoraParams, StrictModel, TinyModelParams, step_schema

# the spec's four signals; a user's logs may carry more (e.g. dwell seconds) and name them here
DEFAULT_METRICS = ("views", "clicks", "likes", "dislikes")
BinMode = Literal["equal_width", "equal_frequency"]
# the arms a train step can produce beside SFT and RLHB (see train_step.py)
Arm = Literal["rlhbc", "rlhf", "no_bootstrap", "no_conditioning"]


class RlhbDataParams(StrictModel):
    """rlhb_data: the simulator's logs (simulator.py), or the user's JSONL of logged triplets."""

    seed: int = 0
    topics: int = Field(30, gt=1, le=30)  # spec: 30 query topics
    templates: int = Field(5, gt=0, le=5)  # spec: 5 query templates per topic
    logs: int = Field(20_000, gt=0)  # spec: 20k logged triplets
    # the logging policy's share of good / mediocre / bad responses (ours)
    policy_mix: tuple[float, float, float] = (0.3, 0.4, 0.3)
    mean_views: float = Field(20.0, gt=0)  # spec: PV ~ Poisson(20)
    click_rate: float = Field(0.3, gt=0, le=1)  # spec: clicks ~ Bin(PV, 0.3)
    # ours: the answer is shown at a uniform position 1..positions, examined with probability
    # position**-position_bias, which scales views and the feedback rates (position unlogged)
    positions: int = Field(5, gt=0)
    position_bias: float = Field(0.5, ge=0)
    # ours: the last template(s) of every topic are never logged; evaluation asks them apart
    eval_templates: int = Field(1, ge=0)
    bins: int = Field(5, gt=1)  # spec: N = 5
    bin_mode: BinMode = "equal_width"  # spec: equal width on log1p, 1st-99th percentile
    metrics: tuple[str, ...] = DEFAULT_METRICS
    # the user's logs: JSONL of id, query, response, behaviour ({metric: count}); see logs.py
    logs_file: str | None = None

    @model_validator(mode="after")
    def _check(self) -> RlhbDataParams:
        if abs(sum(self.policy_mix) - 1) > 1e-6 or min(self.policy_mix) < 0:
            raise ValueError("rlhb_data.policy_mix must be three shares summing to 1")
        if self.eval_templates >= self.templates:
            raise ValueError("rlhb_data.eval_templates must leave templates for the logs")
        if len(set(self.metrics)) != len(self.metrics) or not self.metrics:
            raise ValueError("rlhb_data.metrics must name distinct behaviour signals")
        return self


class ScorerParams(StrictModel):
    """The small BERT built from a config that every scorer shares (spec: a 2-layer BertConfig
    trained from scratch): the discriminator, RLHBC's classifier, pairwise RLHF's reward model."""

    hidden_size: int = Field(64, gt=0)
    num_hidden_layers: int = Field(2, gt=0)
    num_attention_heads: int = Field(4, gt=0)
    max_length: int = Field(96, gt=0)
    # ours (spec: 5e-6 for an LLM discriminator); at 1e-3 this BERT from scratch was still at
    # chance after 1,000 steps, at 3e-3 D reaches ~0.70 held-out accuracy in 1,500 (a logistic
    # regression on the simulator's own quality features reaches 0.68: that is the task's ceiling)
    learning_rate: float = Field(3e-3, gt=0)
    warmup_steps: int = Field(1500, ge=0)  # D's warm-up (step 0); RLHBC's and RLHF's training
    batch_size: int = Field(64, gt=0)


class RlhbParams(StrictModel):
    """rlhb: behaviour-conditioned SFT, then the adversarial loop (or a baseline's RL)."""

    seed: int = 0
    # the tiny profile's generator (spec: GPT2Config 2 layers, 128 wide; ours the project's Llama)
    generator: TinyModelParams = TinyModelParams(
        hidden_size=128, intermediate_size=256, num_hidden_layers=2, max_position_embeddings=128
    )
    lora: LoraParams = LoraParams()  # the smollm2 / hf profiles' generator (spec: LoRA lr 1e-5)
    sft_steps: int = Field(600, gt=0)
    sft_batch_size: int = Field(32, gt=0)
    sft_learning_rate: float = Field(1e-3, gt=0)
    iterations: int = Field(300, gt=0)  # spec: 300 RL iterations
    prompts_per_iteration: int = Field(16, gt=0)  # spec: batch 16 prompts
    rollouts: int = Field(4, gt=0)  # spec: n = 4
    kl_coef: float = Field(0.05, ge=0)  # spec: beta_KL per token against the SFT policy
    learning_rate: float = Field(1e-4, gt=0)  # spec (tiny CPU validation): 1e-4
    max_new_tokens: int = Field(24, gt=0)  # ours (spec: 512); the world's answers are <= 20 words
    temperature: float = Field(1.0, gt=0)
    bootstrap_ratio: float = Field(0.1, ge=0, le=1)  # spec: rho
    reward_clip: float = Field(5.0, gt=0)  # spec: [-5, 5]
    target_b_star_share: float = Field(0.5, ge=0, le=1)  # spec: 50 % b*, 50 % logged behaviours
    fake_generated_share: float = Field(0.5, ge=0, le=1)  # spec: 50 % generated, 50 % shuffled
    label_smoothing: float = Field(0.1, ge=0, lt=0.5)  # spec
    discriminator_steps: int = Field(1, ge=0)  # spec: 1 D step per RL iteration
    scorer: ScorerParams = ScorerParams()
    # spec: b* = views 5/5, clicks 5/5, likes 5/5, dislikes 1/5 (a metric not named: the top bin)
    b_star: dict[str, int] = Field(
        default_factory=lambda: {"views": 5, "clicks": 5, "likes": 5, "dislikes": 1}
    )
    arms: tuple[Arm, ...] = ()  # the baselines and ablations trained beside RLHB
    eval_samples: int = Field(4, gt=0)  # sampled answers per evaluation query

    @model_validator(mode="after")
    def _check(self) -> RlhbParams:
        if self.rollouts == 1 and self.prompts_per_iteration == 1:
            raise ValueError("rlhb: one rollout of one prompt leaves no baseline to subtract")
        return self


RlhbDataStep = step_schema("RlhbDataStep", rlhb_data=RlhbDataParams)
RlhbStep = step_schema("RlhbStep", rlhb=RlhbParams)
