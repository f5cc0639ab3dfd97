"""finetune's section: the SFT run, EPI's isolation settings and the baselines' (CPI-FT)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from components.common.params import LoraParams, StrictModel, TrainerParams, step_schema

if TYPE_CHECKING:
    from transformers import TrainingArguments

# optimizer steps per stage of a staged run: equal shares, or in proportion to the records
StageSteps = Literal["even", "proportional"]
NormMode = Literal["mean", "max", "minmax", "zscore", "rank", "none"]
_STATIC_WARMUP = 25  # EPI: first refresh of a static (K = infinity) mask


class IsolationConfig(StrictModel):
    """EPI hyperparameters. The defaults are sized for the tiny model on a CPU; the selection
    limits (exact_quantile_max_elements, quantile_sample_size, eps) bound a refresh's memory."""

    iso_ratio: float = Field(0.05, ge=0.0, lt=1.0, description="p: fraction of eligible entries")
    mask_interval: int | None = Field(25, ge=0, description="K; None or 0 = static mask")
    ema_beta: float = Field(0.95, ge=0.0, lt=1.0)
    # [D] cheaper importance estimators; the defaults are the exact per-step fp32 EMA
    # (bench/epi_estimators.py: their masks' agreement with it, and their step cost)
    ema_every: int = Field(1, ge=1, description="s: the EMA sees every s-th gradient")
    ema_dtype: Literal["float32", "bfloat16"] = "float32"
    warmup_steps: int | None = Field(None, ge=0, description="T0; None = K (25 when static)")
    norm: NormMode = "mean"
    selection: Literal["global", "per_layer"] = "global"
    eligible: Literal["blocks", "all"] = "blocks"
    # none: observe only (EMA, masks and drift stats computed, nothing protected)
    protect_mode: Literal["final_delta", "grad_zero", "lr_scale", "none"] = "final_delta"
    lr_scale_gamma: float = Field(0.1, ge=0.0, le=1.0)
    moments: Literal["keep", "reset_on_release"] = "keep"
    # external: the mask comes from engine.set_mask() (e.g. CPI-FT cores), never refreshed
    mask_source: Literal["importance", "random", "inverse", "external"] = "importance"
    eps: float = Field(1e-12, gt=0.0)
    exact_quantile_max_elements: int = Field(16_000_000, ge=1)
    quantile_sample_size: int = Field(10_000_000, ge=1)
    seed: int = 0
    per_task_ema: bool = False
    stage_memory: bool = False
    stage_memory_ratio: float | None = Field(None, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _one_extension(self) -> IsolationConfig:
        if self.per_task_ema and self.stage_memory:
            raise ValueError("per_task_ema and stage_memory are separate ablations; pick one")
        if self.mask_source == "external" and (self.per_task_ema or self.stage_memory):
            raise ValueError("mask_source=external excludes per_task_ema and stage_memory")
        return self

    @property
    def interval(self) -> int | None:
        """K, or None for the static control."""
        return self.mask_interval or None

    @property
    def warmup(self) -> int:
        """T0, the first refresh step (at least 1: the EMA needs one gradient)."""
        t0 = self.warmup_steps if self.warmup_steps is not None else self.interval or _STATIC_WARMUP
        return max(t0, 1)

    @property
    def memory_ratio(self) -> float:
        return self.iso_ratio if self.stage_memory_ratio is None else self.stage_memory_ratio


class CpiParams(StrictModel):
    """CPI-FT / DPI static isolation baseline: per-task cores from a short probe (mixed schedule)
    or from each stage's update (sequential schedule), frozen in later stages."""

    iso_ratio: float = Field(0.05, gt=0.0, lt=1.0, description="core size p (paper: 0.01)")
    probe_steps: int = Field(50, gt=0)
    jaccard_tau: float = Field(0.1, ge=0.0, le=1.0, description="tasks group when J >= tau")


FinetuneMethod = Literal[
    "full", "multistage", "epi", "epi_static", "cpi", "random_mask", "inverse_epi"
]


class FinetuneParams(TrainerParams):
    seed: int = 0
    method: FinetuneMethod = "epi"
    # mixed: one shuffled stream of all tasks; sequential: the records' stages in order
    # (multistage and cpi always train in stages)
    schedule: Literal["mixed", "sequential"] = "mixed"
    stage_steps: StageSteps = "even"
    isolation: IsolationConfig = IsolationConfig()
    cpi: CpiParams = CpiParams()
    # full/multistage: run the importance engine observe-only, to measure drift
    track_drift: bool = True
    eval_every: int = Field(250, gt=0, description="per-task accuracy every N optimizer steps")
    eval_per_task: int = Field(20, gt=0)
    dynamics_every: int = Field(250, gt=0, description="per-record loss every E steps")
    max_steps: int = Field(2000, gt=0)
    gradient_accumulation_steps: int = Field(1, gt=0)
    max_grad_norm: float = Field(1.0, gt=0)
    max_length: int = Field(96, gt=0)
    save_steps: int = Field(500, gt=0)
    resume: bool = True
    lora: LoraParams = LoraParams()

    def to_training_arguments(
        self, output_dir: str | os.PathLike, seed: int, **overrides: Any
    ) -> TrainingArguments:
        """The shared Trainer fields plus accumulation, clipping and checkpoint spacing."""
        own = {
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
            "max_grad_norm": self.max_grad_norm,
            "save_steps": self.save_steps,
        }
        return super().to_training_arguments(output_dir, seed, **own | overrides)


# what `python -m components.epi_finetune` reads from params.yaml
FinetuneStep = step_schema("FinetuneStep", finetune=FinetuneParams)
