"""The reusable preference-tuning (DPO) stage: the JSONL preference format, its Great Expectations
suite, the params, training with TRL's `DPOTrainer`, and the per-record preference margin.

A preference record is one JSON object per line:
`{"prompt": str, "chosen": str, "rejected": str, "meta": {...}}` with an optional `id`; `meta`
may be empty or left out. Prompts are rendered as SFT renders them (`render_prompt`: the chat
template of an instruct model, else `prompt\\n`), and every answer ends with EOS, as in SFT.

The loss is TRL's `loss_type=["sigmoid", "sft"]` with `loss_weights=[1, sft_weight]`: the DPO
loss plus `sft_weight` times the mean NLL of the chosen answer's tokens (LLaMA-Factory's
`pref_ftx`; TRL 1.16 has no `rpo_alpha`). `sft_weight = 0` is plain DPO.

The reference is the policy as loaded: with LoRA, the same network with the adapter disabled
(TRL copies the freshly initialised adapter into a frozen `ref` adapter, whose B = 0 leaves the
base model's outputs); in full fine-tuning, a frozen deep copy (never a reload by name: a model
built from a config has no name to reload it from).

torch, TRL, datasets and MLflow are imported by the functions that use them."""

from __future__ import annotations

import copy
import csv
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from components.common.io import ProjectError, atomic_path, read_numbered_jsonl
from components.common.params import LoraParams, TrainerParams

if TYPE_CHECKING:
    import great_expectations as gx
    import torch
    from transformers import PreTrainedTokenizerBase

PREFERENCE_COLUMNS = ["line", "id", "prompt", "chosen", "rejected", "meta"]
SUITE_NAME = "preference_records"


class PreferenceRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    id: str | None = None
    prompt: str
    chosen: str
    rejected: str
    meta: dict[str, Any] = {}


class PreferenceParams(TrainerParams):
    """DPO with an SFT term on the chosen answer. Defaults: the DPO paper's / TRL's where they
    exist, LLaMA-Factory's for the SFT weight, ours otherwise (each says which)."""

    seed: int = 0  # ours
    beta: float = Field(0.1, gt=0)  # DPO paper's and TRL's default
    sft_weight: float = Field(0.2, ge=0)  # LLaMA-Factory's dpo_ftx; 0 = plain DPO (TRL's default)
    learning_rate: float = Field(1e-5, gt=0)  # ours (TRL: 1e-6, the DPO paper: 5e-7 at 6B+)
    max_steps: int = Field(200, gt=0)  # ours
    batch_size: int = Field(8, gt=0)  # ours (TRL: 8 per device, the DPO paper: 64)
    max_length: int = Field(512, gt=0)  # ours (TRL: 1024); prompt + answer, in tokens
    logging_steps: int = Field(10, gt=0)  # ours
    # ours = the project's TrainingArguments default (training.training_arguments); TRL: linear
    lr_scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup"] = "cosine"
    # warmup_ratio 0.05 and weight_decay 0.01: the project's TrainerParams defaults (TRL: 0, 0)
    lora: LoraParams = LoraParams()  # the project's LoraParams defaults (off: full fine-tuning)


# --- the format ---------------------------------------------------------------------------------


def read_preferences(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of a preference JSONL, each with its source `line` and an `id` (given, else
    `<file stem>-<line>`). Malformed JSON, a missing field, an unknown field or a wrong type is a
    ProjectError naming file, line and field; empty texts and chosen == rejected are left to
    `validate_preferences` (the GX suite)."""
    path = Path(path)
    records = []
    for line, raw in read_numbered_jsonl(path):
        try:
            record = PreferenceRecord.model_validate(raw)
        except ValidationError as error:
            first = error.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or None
            raise ProjectError(first["msg"], file=path, line=line, field=field) from None
        records.append(
            {**record.model_dump(), "id": record.id or f"{path.stem}-{line}", "line": line}
        )
    return records


def preference_expectations() -> list[gx.expectations.Expectation]:
    """The preference record contract: the columns, at least one record, unique ids, non-empty
    prompt/chosen/rejected, and chosen != rejected (blamed on `rejected`)."""
    import great_expectations as gx

    ex = gx.expectations
    return [
        ex.ExpectTableColumnsToMatchSet(column_set=PREFERENCE_COLUMNS, exact_match=True),
        ex.ExpectTableRowCountToBeBetween(min_value=1),
        ex.ExpectColumnValuesToBeUnique(column="id"),
        *(
            ex.ExpectColumnValueLengthsToBeBetween(column=column, min_value=1)
            for column in ("prompt", "chosen", "rejected")
        ),
        # per row, the values of the listed columns are all different: chosen != rejected
        ex.ExpectSelectColumnValuesToBeUniqueWithinRecord(
            column_list=["chosen", "rejected"],
            meta={"field": "rejected", "message": "rejected is the same text as chosen"},
        ),
    ]


def validate_preferences(records: list[dict[str, Any]], source: str) -> dict[str, Any]:
    """Run the GX suite on `records` (a record without `line` is numbered by its position);
    raise DataValidationError naming file, line and field, else return the result JSON."""
    from components.common.validation import validate_records

    numbered = [{"line": i, **record} for i, record in enumerate(records, start=1)]
    return validate_records(
        numbered, preference_expectations(), source, SUITE_NAME, columns=PREFERENCE_COLUMNS
    )


# --- encoding and the margin --------------------------------------------------------------------


def encode_pair(
    tokenizer: PreTrainedTokenizerBase, record: dict[str, Any]
) -> tuple[list[int], list[int], list[int]]:
    """(prompt, chosen, rejected) token ids exactly as TRL 1.16's DPOTrainer tokenizes a plain
    (rendered) example: the prompt and prompt + answer + EOS each tokenized whole, the answer
    starting where they diverge."""
    prompt = _render(tokenizer, record["prompt"])
    eos = tokenizer.eos_token

    def ids(text: str) -> list[int]:
        return list(tokenizer(text)["input_ids"])

    prompt_ids = ids(prompt)
    chosen, rejected = (
        ids(prompt + (record[key] if record[key].endswith(eos) else record[key] + eos))
        for key in ("chosen", "rejected")
    )
    keep = min(_common_prefix(prompt_ids, chosen), _common_prefix(prompt_ids, rejected))
    return prompt_ids[:keep], chosen[keep:], rejected[keep:]


def sequence_logprobs(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    records: Sequence[dict[str, Any]],
    max_length: int | None = None,
    batch_size: int = 16,
) -> list[tuple[float, float]]:
    """Per record, (log p(chosen | prompt), log p(rejected | prompt)): the sums of the answer
    tokens' log-probs (EOS included), truncated to `max_length` tokens as DPOTrainer does."""
    import torch

    was_training = model.training
    model.eval()
    sequences: list[tuple[list[int], int]] = []  # (ids, where the answer starts)
    for record in records:
        prompt_ids, chosen_ids, rejected_ids = encode_pair(tokenizer, record)
        for answer in (chosen_ids, rejected_ids):
            sequences.append(((prompt_ids + answer)[:max_length], len(prompt_ids)))
    sums: list[float] = []
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    with torch.no_grad():
        for start in range(0, len(sequences), batch_size):
            chunk = sequences[start : start + batch_size]
            width = max(len(ids) for ids, _ in chunk)
            input_ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            attention = torch.zeros((len(chunk), width), dtype=torch.long)
            answer = torch.zeros((len(chunk), width), dtype=torch.bool)
            for row, (ids, begin) in enumerate(chunk):
                input_ids[row, : len(ids)] = torch.tensor(ids)
                attention[row, : len(ids)] = 1
                answer[row, begin : len(ids)] = True
            input_ids, attention, answer = (t.to(device) for t in (input_ids, attention, answer))
            logits = model(input_ids=input_ids, attention_mask=attention).logits[:, :-1].float()
            logps = torch.log_softmax(logits, dim=-1)
            token = logps.gather(-1, input_ids[:, 1:, None]).squeeze(-1)
            sums.extend((token * answer[:, 1:]).sum(dim=1).tolist())
    model.train(was_training)
    return list(zip(sums[0::2], sums[1::2], strict=True))


def preference_margin(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    records: Sequence[dict[str, Any]],
    max_length: int | None = None,
    batch_size: int = 16,
) -> list[float]:
    """Per record, log p(chosen | prompt) - log p(rejected | prompt) under `model`: positive
    where the model prefers the chosen answer."""
    pairs = sequence_logprobs(model, tokenizer, records, max_length, batch_size)
    return [chosen - rejected for chosen, rejected in pairs]


# --- training -----------------------------------------------------------------------------------


def dpo_config(params: PreferenceParams, output_dir: Path, report_to: list[str]) -> Any:
    """`DPOConfig` from the project's TrainingArguments (`params.to_training_arguments`) plus
    the DPO fields: every Trainer default of the project holds here too."""
    import dataclasses

    from transformers import TrainingArguments
    from trl import DPOConfig

    base = params.to_training_arguments(
        output_dir,
        params.seed,
        lr_scheduler_type=params.lr_scheduler,
        save_strategy="no",  # one short stage: no checkpoints, the model is saved at the end
        report_to=report_to,
    )
    inherited = {
        f.name: getattr(base, f.name) for f in dataclasses.fields(TrainingArguments) if f.init
    }
    losses = ["sigmoid", "sft"] if params.sft_weight > 0 else ["sigmoid"]
    weights = [1.0, params.sft_weight] if params.sft_weight > 0 else [1.0]
    return DPOConfig(
        **inherited,
        beta=params.beta,
        loss_type=losses,
        loss_weights=weights,
        max_length=params.max_length,
        truncation_mode="keep_start",
    )


def train_preferences(
    params: PreferenceParams,
    model_dir: str | os.PathLike,
    records: list[dict[str, Any]],
    out_dir: str | os.PathLike,
    report_dir: str | os.PathLike,
    source: str = "preference records",
) -> dict[str, float]:
    """DPO of the model saved in `model_dir` on `records`; the trained model is saved to
    `out_dir` (a plain `save_pretrained` directory, LoRA merged) and the curves to `report_dir`.
    Records are validated (GX) before anything is loaded or written. Logs into the active MLflow
    run if there is one (never starts one). Returns the final metrics."""
    import mlflow
    from datasets import Dataset
    from trl import DPOTrainer

    from components.common.models import load_causal_lm, save_model, with_lora
    from components.common.repro import seed_everything

    validate_preferences(records, source)
    out_dir, report_dir = Path(out_dir), Path(report_dir)
    seed_everything(params.seed)
    model, tokenizer = load_causal_lm(model_dir)
    _check_prompt_lengths(tokenizer, records, params.max_length, source)
    if params.lora.enabled:
        # TRL sees a PeftModel and no ref_model: it freezes a copy of this fresh adapter as `ref`
        policy, reference = with_lora(model, params.lora), None
    else:
        reference = copy.deepcopy(model).eval().requires_grad_(False)
        policy = model
    dataset = Dataset.from_list(
        [
            {
                "prompt": _render(tokenizer, r["prompt"]),
                "chosen": r["chosen"],
                "rejected": r["rejected"],
            }
            for r in records
        ]
    )
    tracking = mlflow.active_run() is not None
    with tempfile.TemporaryDirectory(prefix="dpo-") as work:
        trainer = DPOTrainer(
            model=policy,
            ref_model=reference,
            args=dpo_config(params, Path(work), ["mlflow"] if tracking else []),
            train_dataset=dataset,
            processing_class=tokenizer,
        )
        trainer.train()
    history = trainer.state.log_history
    metrics = _final_metrics(history)
    save_model(trainer.model, tokenizer, params.lora.enabled, out_dir)
    png = save_preference_curves(history, report_dir)
    if tracking:
        mlflow.log_metrics(metrics)
        mlflow.log_artifact(str(png), artifact_path="plots")
    return metrics


def save_preference_curves(history: list[dict[str, Any]], report_dir: Path) -> Path:
    """dpo_curves.csv and dpo_curves.png (loss and reward margin per logged step); returns the
    PNG's path."""
    from components.common.plots import line_plot

    rows = [
        {"step": e["step"], "loss": e["loss"], "reward_margin": e.get("rewards/margins")}
        for e in history
        if "loss" in e
    ]
    with atomic_path(report_dir / "dpo_curves.csv") as tmp, tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["step", "loss", "reward_margin"])
        writer.writeheader()
        writer.writerows(rows)
    margins = [r for r in rows if r["reward_margin"] is not None]
    return line_plot(
        {
            "train loss": ([r["step"] for r in rows], [r["loss"] for r in rows]),
            "reward margin": ([r["step"] for r in margins], [r["reward_margin"] for r in margins]),
        },
        report_dir / "dpo_curves.png",
        title="DPO training",
        xlabel="optimizer step",
        ylabel="loss / reward margin",
    )


def _final_metrics(history: list[dict[str, Any]]) -> dict[str, float]:
    """The last logged value of the loss, reward accuracy and reward margin."""
    names = {
        "loss": "dpo_final_loss",
        "rewards/accuracies": "dpo_reward_accuracy",
        "rewards/margins": "dpo_reward_margin",
        "rewards/chosen": "dpo_reward_chosen",
        "rewards/rejected": "dpo_reward_rejected",
    }
    metrics: dict[str, float] = {}
    for entry in history:
        for key, name in names.items():
            if key in entry:
                metrics[name] = float(entry[key])
    return metrics


def _check_prompt_lengths(
    tokenizer: PreTrainedTokenizerBase,
    records: list[dict[str, Any]],
    max_length: int,
    source: str,
) -> None:
    """DPOTrainer silently drops an example whose prompt alone fills `max_length`: an error here."""
    for number, record in enumerate(records, start=1):
        prompt_ids, _, _ = encode_pair(tokenizer, record)
        if len(prompt_ids) >= max_length:
            raise ProjectError(
                f"prompt is {len(prompt_ids)} tokens, at least max_length = {max_length}: "
                "no answer token would be trained",
                file=source,
                line=record.get("line", number),
                field="prompt",
            )


def _render(tokenizer: PreTrainedTokenizerBase, prompt: str) -> str:
    from components.common.models import render_prompt

    return render_prompt(tokenizer, prompt)


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
