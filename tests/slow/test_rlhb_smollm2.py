"""RLHB's train and evaluate stages with the real SmolLM2-135M-Instruct as the generator (profile
`smollm2`, LoRA): the adapter is trained, merged into the saved generators, and the registered
generator answers through its chat template."""

import pytest

from components.common.io import read_json
from components.common.params import LoraParams, ModelParams
from components.rlhb import data_step, evaluate_step, train_step
from components.rlhb.params import RlhbDataParams, RlhbParams, ScorerParams

pytestmark = pytest.mark.slow


def test_smollm2_generator_trains_with_lora_and_is_registered(tmp_path, mlflow_uri):
    data, models = tmp_path / "data", tmp_path / "models"
    data_step.run(RlhbDataParams(logs=200), "smollm2", data, tmp_path / "r/data")
    params = RlhbParams(
        lora=LoraParams(enabled=True),
        sft_steps=2, sft_batch_size=4, iterations=1, prompts_per_iteration=2, rollouts=2,
        max_new_tokens=8, eval_samples=1, scorer=ScorerParams(hidden_size=16, warmup_steps=2),
    )  # fmt: skip
    model_params = ModelParams(smollm2_cache_dir=str(tmp_path / "smollm2"))
    train_step.run(params, "smollm2", model_params, data, models, tmp_path / "r/train")
    config = read_json(models / "rlhb/config.json")
    assert config["model_type"] == "llama" and not (models / "rlhb/adapter_config.json").exists()
    evaluation = evaluate_step.run(params, "smollm2", data, models, tmp_path / "r/ev")
    assert evaluation["promoted"] == 1 and "rlhb.score" in evaluation
