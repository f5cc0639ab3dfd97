"""grm_grpo end to end on a tiny setting: the real TRL GRPOTrainer (2 steps, G = 4) with the
pairwise reward of a real (untrained) scorer, an MLflow run, and a policy written in grm_policy's
layout that the evaluation's loader reads back."""

import csv

import mlflow
import pytest
import torch

from components.common.io import write_jsonl
from components.common.models import build_tiny_model, load_causal_lm
from components.common.tokenizer import train_bpe_tokenizer
from components.grm_scorer import data_step, grpo_step
from components.grm_scorer.scorer import build_scorer, save_scorer
from pipelines.params import load_project_params
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration

TINY = [
    "grm_data.train_questions=16",
    "grm_data.scorer_questions=4",
    "grm_data.eval_questions=4",
    "grm.policy.tiny={hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, "
    "num_attention_heads: 2, max_position_embeddings: 128}",
    "grm.gating.max_new_tokens_cot=8",
    "grm.scorer.char={hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, "
    "intermediate_size: 32}",
    "grm.scorer.hidden=8",
    "grm.grpo.steps=2",
    "grm.grpo.num_generations=4",
    "grm.grpo.prompts_per_step=2",
    "grm.grpo.logging_steps=1",
    "grm.grpo.learning_rate=0.01",  # large enough that two steps visibly change the weights
]


def test_grpo_step_trains_logs_and_writes_a_loadable_policy(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # TRL's output_dir (checkpoints/) lands here
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    params = load_project_params(REPO_ROOT / "params.yaml", TINY)
    data = tmp_path / "data"  # grm_data's training split, without its (slow) GX validation
    records = data_step.build_splits(params.grm_data)["train"]
    write_jsonl(data / "train.jsonl", records)
    texts = [r["prompt"] + "\n" + r["response"] for r in records]
    tokenizer = train_bpe_tokenizer(texts, params.grm_data.tokenizer_vocab_size)
    policy = tmp_path / "policy"
    torch.manual_seed(0)
    build_tiny_model(params.grm.policy.tiny, tokenizer).save_pretrained(policy)
    tokenizer.save_pretrained(policy)
    save_scorer(
        build_scorer(params.grm.scorer, policy, "\nLet's think step by step."), tmp_path / "scorer"
    )

    out, reports = tmp_path / "grpo", tmp_path / "reports/grpo"
    metrics = grpo_step.run(
        params.grm, params.profile, data, policy, tmp_path / "scorer", out, reports
    )

    assert metrics["grpo.steps"] == 2
    assert 0 <= metrics["grpo.correct.last"] <= 1 and metrics["grpo.kl.last"] >= 0
    with (reports / "curves.csv").open() as handle:
        assert [row["step"] for row in csv.DictReader(handle)] == ["1", "2"]
    assert all((reports / f"{name}.png").stat().st_size > 1000 for name in ("reward", "kl"))
    before, _ = load_causal_lm(policy)
    after, after_tokenizer = load_causal_lm(out)  # grm_policy's layout: model + tokenizer
    assert len(after_tokenizer) == len(tokenizer)
    changed = [
        not torch.equal(a, b)
        for a, b in zip(before.state_dict().values(), after.state_dict().values(), strict=True)
    ]
    assert any(changed)
    mlflow.set_tracking_uri(uri)
    run = mlflow.search_runs(search_all_experiments=True, filter_string="tags.step = 'grm_grpo'")
    assert len(run) == 1 and run["metrics.grpo.steps"][0] == 2
    assert run["params.grm_grpo.reward"][0] == "pairwise"
