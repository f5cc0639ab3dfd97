"""DPO with TRL on a tiny Llama: the trained policy prefers the chosen answers more than the
reference does (the swap test: it fails if chosen and rejected were swapped anywhere), for full
fine-tuning and LoRA; the saved directory is a plain model; metrics and curves reach MLflow."""

from __future__ import annotations

import statistics

import mlflow
import pytest
import torch
from transformers import AutoModelForCausalLM

from components.common.models import build_tiny_model, load_causal_lm
from components.common.params import LoraParams, TinyModelParams
from components.common.preference import PreferenceParams, preference_margin, train_preferences
from components.common.tokenizer import train_bpe_tokenizer
from components.common.tracking import open_experiment

# the chosen answer is always "yes <word>", the rejected one "no <word>": learnable from the prompt
WORDS = ["red", "blue", "green", "gold", "pink", "gray", "teal", "navy"]
RECORDS = [
    {"prompt": f"say {w}", "chosen": f"yes {w}", "rejected": f"no {w}", "meta": {"aspect": "t"}}
    for w in WORDS
]


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    texts = [f"{r['prompt']}\n{r['chosen']}\n{r['rejected']}" for r in RECORDS] * 4
    tokenizer = train_bpe_tokenizer(texts, 270)
    torch.manual_seed(0)
    arch = TinyModelParams(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=64,
    )
    model = build_tiny_model(arch, tokenizer)  # about 25k parameters
    directory = tmp_path_factory.mktemp("base") / "model"
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def mean_margin(model_dir) -> float:
    model, tokenizer = load_causal_lm(model_dir)
    return statistics.mean(preference_margin(model, tokenizer, RECORDS))


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_dpo_raises_the_margin_of_the_chosen_answers(
    base_dir, tmp_path, mlflow_uri, monkeypatch, lora
):
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "preference-test")
    open_experiment()  # the private store of `mlflow_uri`, as a step's `step_run` opens it
    params = PreferenceParams(
        max_steps=8,
        batch_size=4,
        learning_rate=5e-3 if not lora else 2e-2,
        max_length=32,
        logging_steps=2,
        warmup_ratio=0.0,
        lora=LoraParams(enabled=lora, r=4, alpha=8),
    )
    with mlflow.start_run() as run:
        metrics = train_preferences(
            params, base_dir, RECORDS, tmp_path / "out", tmp_path / "report", "pairs.jsonl"
        )
        assert mlflow.active_run().info.run_id == run.info.run_id  # logged into the caller's run
    before, after = mean_margin(base_dir), mean_margin(tmp_path / "out")
    assert after > before + 0.5, (before, after)
    assert metrics["dpo_reward_margin"] > 0 and metrics["dpo_reward_accuracy"] > 0.5
    # a plain save_pretrained directory: no adapter, loadable by transformers alone
    saved = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    assert not (tmp_path / "out" / "adapter_config.json").exists()
    assert type(saved).__name__ == "LlamaForCausalLM"
    assert (tmp_path / "report" / "dpo_curves.png").stat().st_size > 0
    logged = mlflow.get_run(run.info.run_id).data.metrics
    assert {"dpo_final_loss", "dpo_reward_accuracy", "dpo_reward_margin"} <= set(logged)
    assert "rewards/margins" in logged  # TRL's own per-step logging went into the same run
    assert len(mlflow.search_runs()) == 1  # and started none of its own
