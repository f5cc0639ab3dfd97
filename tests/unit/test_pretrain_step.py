"""pretrain for a pretrained profile: it only materialises the base, yet must still create every
declared DVC output (dvc.yaml: models/base and reports/pretrain)."""

import json

import torch

from components.common.models import build_tiny_model
from components.common.params import ModelParams, TinyModelParams
from components.common.tokenizer import train_bpe_tokenizer
from components.pretrain.params import PretrainParams
from components.pretrain.step import run


def test_a_pretrained_profile_writes_the_base_and_its_report(tmp_path, mlflow_uri):
    tokenizer = train_bpe_tokenizer(["a small corpus for a tiny tokenizer"], 270)
    torch.manual_seed(0)
    arch = TinyModelParams(
        hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2
    )
    hub_model = tmp_path / "hub-model"
    build_tiny_model(arch, tokenizer).save_pretrained(hub_model)
    tokenizer.save_pretrained(str(hub_model))
    out, reports = tmp_path / "models" / "base", tmp_path / "reports" / "pretrain"

    metrics = run(
        PretrainParams(),
        ModelParams(hf_name_or_path=str(hub_model)),
        "hf",
        tmp_path / "no-data-needed",
        out,
        reports,
    )

    assert metrics["trained"] == 0.0
    assert (out / "config.json").is_file()
    summary = json.loads((reports / "base.json").read_text())
    assert summary["source"] == str(hub_model) and summary["parameters"] == metrics["parameters"]
