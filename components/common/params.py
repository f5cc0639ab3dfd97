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
