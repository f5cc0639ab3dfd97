"""The preference format, its GX suite, the DPO config and the per-record margin."""

from __future__ import annotations

import json

import pytest
import torch

from components.common.io import ProjectError
from components.common.models import build_tiny_model
from components.common.params import TinyModelParams
from components.common.preference import (
    PreferenceParams,
    dpo_config,
    preference_margin,
    read_preferences,
    sequence_logprobs,
    train_preferences,
    validate_preferences,
)
from components.common.tokenizer import train_bpe_tokenizer
from components.common.validation import DataValidationError

GOOD = {"prompt": "capital of France?", "chosen": "Paris", "rejected": "Lyon", "meta": {}}


def write(tmp_path, lines: list[object]) -> str:
    path = tmp_path / "pairs.jsonl"
    path.write_text(
        "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines),
        encoding="utf-8",
    )
    return str(path)


def error_of(tmp_path, lines: list[object]) -> ProjectError:
    path = write(tmp_path, lines)
    with pytest.raises(ProjectError) as caught:
        validate_preferences(read_preferences(path), path)
    return caught.value


def test_good_records_are_read_with_line_and_id(tmp_path):
    path = write(tmp_path, [GOOD, "", {**GOOD, "id": "q2", "meta": {"aspect": "factuality"}}])
    records = read_preferences(path)
    assert [(r["line"], r["id"]) for r in records] == [(1, "pairs-1"), (3, "q2")]
    assert records[1]["meta"] == {"aspect": "factuality"}
    assert validate_preferences(records, path)["success"]


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({k: v for k, v in GOOD.items() if k != "rejected"}, "rejected"),  # missing
        ({**GOOD, "chosen": 3}, "chosen"),  # wrong type
        ({**GOOD, "meta": "factuality"}, "meta"),  # wrong type
        ({**GOOD, "score": 1}, "score"),  # unknown field
    ],
)
def test_structural_errors_name_file_line_and_field(tmp_path, bad, field):
    error = error_of(tmp_path, [GOOD, bad])
    assert (str(error.file).endswith("pairs.jsonl"), error.line, error.field) == (True, 2, field)


def test_bad_json_names_file_and_line(tmp_path):
    error = error_of(tmp_path, [GOOD, GOOD, '{"prompt": "x", "chosen": '])
    assert str(error.file).endswith("pairs.jsonl") and error.line == 3
    assert "malformed JSON" in str(error)


def test_empty_chosen_fails_the_suite_at_its_line(tmp_path):
    error = error_of(tmp_path, [GOOD, {**GOOD, "chosen": ""}])
    assert isinstance(error, DataValidationError)
    assert (error.line, error.field) == (2, "chosen")
    assert "pairs.jsonl:2 [chosen]" in str(error)


def test_chosen_equal_to_rejected_is_blamed_on_rejected(tmp_path):
    error = error_of(tmp_path, [GOOD, GOOD, {**GOOD, "rejected": GOOD["chosen"]}])
    assert isinstance(error, DataValidationError)
    assert (error.line, error.field) == (3, "rejected")
    assert "same text as chosen" in str(error)


def test_empty_file_fails_the_suite(tmp_path):
    error = error_of(tmp_path, [""])
    assert isinstance(error, DataValidationError) and "file is empty" in str(error)


def test_dpo_config_is_dpo_plus_sft_on_chosen(tmp_path):
    config = dpo_config(PreferenceParams(), tmp_path, [])
    assert (config.loss_type, config.loss_weights) == (["sigmoid", "sft"], [1.0, 0.2])
    assert (config.beta, config.learning_rate) == (0.1, 1e-5)
    assert config.lr_scheduler_type == "cosine" and config.report_to == []
    plain = dpo_config(PreferenceParams(sft_weight=0), tmp_path, [])
    assert plain.loss_type == ["sigmoid"]


def test_params_forbid_unknown_keys():
    with pytest.raises(ValueError, match="rpo_alpha"):
        PreferenceParams.model_validate({"rpo_alpha": 1.0})


@pytest.fixture(scope="module")
def tiny_lm():
    tokenizer = train_bpe_tokenizer(["yes no maybe what is it\n"] * 8, 270)
    torch.manual_seed(0)
    arch = TinyModelParams(
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=64,
    )
    return build_tiny_model(arch, tokenizer).eval(), tokenizer


def by_hand(model, tokenizer, prompt: str, answer: str) -> float:
    """log p(answer + EOS | prompt + newline), from the logits of the whole sequence."""
    prompt_ids = tokenizer(prompt + "\n")["input_ids"]
    ids = tokenizer(prompt + "\n" + answer + tokenizer.eos_token)["input_ids"]
    assert ids[: len(prompt_ids)] == prompt_ids and ids[-1] == tokenizer.eos_token_id
    with torch.no_grad():
        logps = torch.log_softmax(model(torch.tensor([ids])).logits[0], dim=-1)
    return sum(logps[t - 1, ids[t]].item() for t in range(len(prompt_ids), len(ids)))


def test_margin_matches_log_probs_computed_by_hand(tiny_lm):
    model, tokenizer = tiny_lm
    records = [
        {"prompt": "what is it", "chosen": "yes", "rejected": "no no maybe"},
        {"prompt": "is it", "chosen": "maybe maybe yes", "rejected": "no"},
    ]
    expected = [
        (
            by_hand(model, tokenizer, r["prompt"], r["chosen"]),
            by_hand(model, tokenizer, r["prompt"], r["rejected"]),
        )
        for r in records
    ]
    # one batch with padding, and one sequence at a time
    for batch_size in (4, 1):
        got = sequence_logprobs(model, tokenizer, records, batch_size=batch_size)
        assert [x for pair in got for x in pair] == pytest.approx(
            [x for pair in expected for x in pair], abs=1e-4
        )
    margins = preference_margin(model, tokenizer, records)
    assert margins == pytest.approx([c - r for c, r in expected], abs=1e-4)
    swapped = [{**r, "chosen": r["rejected"], "rejected": r["chosen"]} for r in records]
    assert preference_margin(model, tokenizer, swapped) == pytest.approx(
        [-m for m in margins], abs=1e-4
    )


def test_training_refuses_bad_records_and_long_prompts_before_writing(tiny_lm, tmp_path):
    model, tokenizer = tiny_lm
    model.save_pretrained(tmp_path / "base")
    tokenizer.save_pretrained(tmp_path / "base")
    out, report = tmp_path / "out", tmp_path / "report"
    same = [{**GOOD, "line": 4}, {**GOOD, "rejected": GOOD["chosen"], "line": 7}]
    with pytest.raises(DataValidationError) as caught:
        train_preferences(PreferenceParams(), tmp_path / "base", same, out, report, "p.jsonl")
    assert (caught.value.line, caught.value.field) == (7, "rejected")
    long = [{**GOOD, "prompt": "what is it " * 20, "line": 2}]
    with pytest.raises(ProjectError, match="max_length = 16") as caught:
        train_preferences(
            PreferenceParams(max_length=16), tmp_path / "base", long, out, report, "p.jsonl"
        )
    assert (caught.value.line, caught.value.field) == (2, "prompt")
    assert not out.exists() and not report.exists()
