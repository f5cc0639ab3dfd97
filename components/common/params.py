"""Typed parameters: one pydantic model per params.yaml section, validated once at the edge.

`extra="forbid"` everywhere, so a typo or a wrong type is an error that names the key."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from components.common.io import ProjectError

Profile = Literal["tiny", "smollm2", "hf"]
ModelT = TypeVar("ModelT", bound=BaseModel)
NormMode = Literal["mean", "max", "minmax", "zscore", "rank", "none"]
_STATIC_WARMUP = 25  # EPI: first refresh of a static (K = infinity) mask
SYNTHETIC_TASKS = ("reverse", "add", "recall", "fact_qa")


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TinyModelParams(StrictModel):
    """Architecture of the `tiny` profile's Llama, built from a config (no weights anywhere)."""

    hidden_size: int = Field(128, gt=0)
    intermediate_size: int = Field(256, gt=0)
    num_hidden_layers: int = Field(4, gt=0)
    num_attention_heads: int = Field(4, gt=0)
    max_position_embeddings: int = Field(128, gt=0)


class ModelParams(StrictModel):
    tiny: TinyModelParams = TinyModelParams()
    hf_name_or_path: str | None = None
    smollm2_cache_dir: str = ".cache/smollm2"


class DataPrepParams(StrictModel):
    seed: int = 0
    source: Literal["synthetic", "user"] = "synthetic"
    # user data: JSONL of prompt/response records or chat `messages`
    user_train: str | None = None
    user_eval: str | None = None
    tasks: tuple[str, ...] = SYNTHETIC_TASKS
    train_per_task: dict[str, int] = {"reverse": 600, "add": 600, "recall": 150, "fact_qa": 400}
    eval_per_task: int = Field(50, gt=0)
    n_entities: int = Field(120, gt=0)
    n_recall_keys: int = Field(150, gt=0)
    corpus_repeats: int = Field(4, gt=0)
    # sequential training: the stage of each task (records carry it in `stage`)
    task_stage: dict[str, int] = {"recall": 0, "reverse": 1, "add": 2, "fact_qa": 2}
    tokenizer_vocab_size: int = Field(512, ge=300)
    max_prompt_chars: int = Field(512, gt=0)
    max_response_chars: int = Field(512, gt=0)

    @model_validator(mode="after")
    def _user_files_when_user_source(self) -> DataPrepParams:
        if self.source == "user" and not self.user_train:
            raise ValueError("source=user needs data_prep.user_train")
        return self


class PretrainParams(StrictModel):
    seed: int = 0
    max_steps: int = Field(400, gt=0)
    batch_size: int = Field(32, gt=0)
    block_size: int = Field(64, gt=0)
    learning_rate: float = Field(3e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    logging_steps: int = Field(20, gt=0)


class LoraParams(StrictModel):
    enabled: bool = False
    r: int = Field(8, gt=0)
    alpha: int = Field(16, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")


class IsolationConfig(StrictModel):
    """EPI hyperparameters; defaults are the tiny-CPU column of the spec."""

    iso_ratio: float = Field(0.05, ge=0.0, lt=1.0, description="p: fraction of eligible entries")
    mask_interval: int | None = Field(25, ge=0, description="K; None or 0 = static mask")
    ema_beta: float = Field(0.95, ge=0.0, lt=1.0)
    warmup_steps: int | None = Field(None, ge=0, description="T0; None = K (25 when static)")
    norm: NormMode = "mean"
    selection: Literal["global", "per_layer"] = "global"
    eligible: Literal["blocks", "all"] = "blocks"
    protect_mode: Literal["final_delta", "grad_zero", "lr_scale"] = "final_delta"
    lr_scale_gamma: float = Field(0.1, ge=0.0, le=1.0)
    moments: Literal["keep", "reset_on_release"] = "keep"
    mask_source: Literal["importance", "random", "inverse"] = "importance"
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


class FinetuneParams(StrictModel):
    seed: int = 0
    method: Literal["full"] = "full"
    max_steps: int = Field(2000, gt=0)
    batch_size: int = Field(32, gt=0)
    gradient_accumulation_steps: int = Field(1, gt=0)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    max_grad_norm: float = Field(1.0, gt=0)
    max_length: int = Field(96, gt=0)
    logging_steps: int = Field(20, gt=0)
    save_steps: int = Field(500, gt=0)
    resume: bool = True
    lora: LoraParams = LoraParams()


class EvaluateParams(StrictModel):
    seed: int = 0
    batch_size: int = Field(64, gt=0)
    max_new_tokens: int = Field(16, gt=0)
    max_per_task: int | None = Field(None, gt=0)
    registered_model_name: str = "sft-model"
    promote_metric: str = "accuracy_mean"
    greater_is_better: bool = True


class ProjectParams(StrictModel):
    profile: Profile = "tiny"
    model: ModelParams = ModelParams()
    data_prep: DataPrepParams = DataPrepParams()
    pretrain: PretrainParams = PretrainParams()
    finetune: FinetuneParams = FinetuneParams()
    evaluate: EvaluateParams = EvaluateParams()


def _apply_override(raw: dict[str, Any], assignment: str) -> None:
    key, sep, value = assignment.partition("=")
    if not sep or not key:
        raise ProjectError(f"override {assignment!r} is not key=value", field=key or None)
    *parents, leaf = key.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ProjectError(f"cannot set {key!r}: {part!r} is not a section", field=key)
    node[leaf] = yaml.safe_load(value)


def load_params(
    path: str | os.PathLike = "params.yaml", overrides: list[str] = ()
) -> ProjectParams:
    """Read params.yaml, apply `key.sub=value` overrides, validate everything once."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ProjectError("params file not found", file=path) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark else None
        raise ProjectError(f"invalid YAML: {error}", file=path, line=line) from None
    if not isinstance(raw, dict):
        raise ProjectError("expected a mapping of sections", file=path)
    for assignment in overrides:
        _apply_override(raw, assignment)
    return validate_section(ProjectParams, raw, source=path)


def validate_section(model: type[ModelT], raw: Any, source: str | os.PathLike) -> ModelT:
    """Validate `raw` against `model`; the first failing key becomes a ProjectError."""
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or None
        more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
        raise ProjectError(first["msg"] + more, file=source, field=key) from None
