"""Typed parameters, validated once at the edge.

Each room declares its sections in its own `params.py` (PEFT's `config.py` pattern). This module
holds what they share: the strict base model, the profile and model sections, the Trainer
arguments, and reading params.yaml into a schema. `step_schema` gives a step its view of the file
(profile, model and its own sections); `pipelines/params.py` assembles every section.

`extra="forbid"` everywhere, so a typo or a wrong type is an error that names the key."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from components.common.io import ProjectError

if TYPE_CHECKING:
    from transformers import TrainingArguments

Profile = Literal["tiny", "smollm2", "hf"]
ModelT = TypeVar("ModelT", bound=BaseModel)
# The top-level keys of params.yaml. A step validates only its own sections, so an unknown key
# (a typo of a section name) is caught here; tests pin this list to pipelines.params.ProjectParams.
PROJECT_SECTIONS = (
    "profile",
    "model",
    "data_prep",
    "pretrain",
    "finetune",
    "evaluate",
    "ilp_diagnosis",
    "ct_data",
    "seg_train",
    "grm_data",
    "grm",
    "knowtuning_data",
    "knowtuning_base",
    "knowtuning_sft",
    "knowtuning",
    "atm_model",
    "atm_data",
    "atm_retrieve",
    "atm_base",
    "atm_sft",
    "atm",
    "govern_data",
    "govern",
    "rlhb_data",
    "rlhb",
)


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


class LoraParams(StrictModel):
    enabled: bool = False
    r: int = Field(8, gt=0)
    alpha: int = Field(16, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")


class TrainerParams(StrictModel):
    """What every `transformers.Trainer` run of ours is configured by; rooms extend it."""

    max_steps: int = Field(300, gt=0)
    batch_size: int = Field(32, gt=0)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    logging_steps: int = Field(20, gt=0)

    def to_training_arguments(
        self, output_dir: str | os.PathLike, seed: int, **overrides: Any
    ) -> TrainingArguments:
        """These fields as `TrainingArguments` (the project's defaults below `overrides`)."""
        # transformers only when a step trains: the import costs seconds of start-up
        from components.common.training import training_arguments

        return training_arguments(
            Path(output_dir),
            **{
                "max_steps": self.max_steps,
                "per_device_train_batch_size": self.batch_size,
                "learning_rate": self.learning_rate,
                "weight_decay": self.weight_decay,
                "warmup_steps": int(self.warmup_ratio * self.max_steps),
                "logging_steps": self.logging_steps,
                "seed": seed,
            }
            | overrides,
        )


def step_schema(name: str, **sections: type[BaseModel]) -> type[BaseModel]:
    """A step's view of params.yaml: `profile`, `model` and the step's own sections, each strict.

    The other steps' sections are left to them (they validate what they read)."""
    fields: dict[str, Any] = {
        "profile": (Profile, "tiny"),
        "model": (ModelParams, Field(default_factory=ModelParams)),
    }
    for key, section in sections.items():
        fields[key] = (section, Field(default_factory=section))
    return create_model(name, __config__=ConfigDict(extra="ignore", frozen=True), **fields)


def read_params(path: str | os.PathLike, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """params.yaml as a dict, with `key.sub=value` overrides applied and section names checked."""
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
    unknown = sorted(set(raw) - set(PROJECT_SECTIONS))
    if unknown:
        known = ", ".join(PROJECT_SECTIONS)
        raise ProjectError(
            f"unknown section (known: {known})",
            file=_blamed_source(unknown[0], overrides, path),
            field=unknown[0],
        )
    return raw


def load_params(
    path: str | os.PathLike,
    overrides: list[str] | tuple[str, ...],
    schema: type[ModelT],
    sections: Mapping[str, str] | None = None,
) -> ModelT:
    """Read params.yaml, apply overrides, validate it once against `schema`. `sections` maps a
    section of `schema` to the params.yaml section it is read from instead (a step reused by
    another pipeline, e.g. finetune's run configured by `knowtuning_sft`); errors name the
    section as written in the file."""
    raw = read_params(path, overrides)
    renamed = dict(sections or {})
    for target, source in renamed.items():
        if source not in raw:
            raise ProjectError("section not found", file=path, field=source)
        raw[target] = raw[source]
    try:
        return validate_section(schema, raw, path, overrides)
    except ProjectError as error:
        head, _, rest = (error.field or "").partition(".")
        if head not in renamed:
            raise
        field = renamed[head] + ("." + rest if rest else "")
        raise ProjectError(error.message, file=error.file, field=field) from None


def _apply_override(raw: dict[str, Any], assignment: str) -> None:
    key, sep, value = assignment.partition("=")
    source = f"--set {assignment}"
    if not sep or not key:
        raise ProjectError("not key=value", file=source, field=key or None)
    *parents, leaf = key.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ProjectError(f"{part!r} is not a section", file=source, field=key)
    try:
        node[leaf] = yaml.safe_load(value)
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or "not parseable"
        raise ProjectError(f"invalid YAML value: {problem}", file=source, field=key) from None


def _blamed_source(
    key: str | None, overrides: list[str] | tuple[str, ...], path: str | os.PathLike
) -> str | os.PathLike:
    """Where a bad `key` came from: the last `--set` on its path (it, a section above it or a
    key below it), else the params file."""
    if key is None:
        return path
    failing = key.split(".")
    for assignment in reversed(overrides):
        assigned = assignment.partition("=")[0].split(".")
        depth = min(len(assigned), len(failing))
        if assigned[:depth] == failing[:depth]:
            return f"--set {assignment}"
    return path


def validate_section(
    model: type[ModelT],
    raw: Any,
    source: str | os.PathLike,
    overrides: list[str] | tuple[str, ...] = (),
) -> ModelT:
    """Validate `raw` against `model`; the first failing key becomes a ProjectError, blamed on
    the `--set` that wrote it if one did, else on `source`."""
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or None
        more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
        raise ProjectError(
            first["msg"] + more, file=_blamed_source(key, overrides, source), field=key
        ) from None
