"""The finetune entrypoint that a Kubeflow Trainer TrainJob node runs (`torchrun -m
components.epi_finetune`), here on one machine with two CPU ranks (gloo), EPI on."""

from __future__ import annotations

import json
import os

import pytest
from mlflow import MlflowClient

from components.data_prep import step as data_prep
from components.pretrain import step as pretrain
from pipelines.params import load_project_params
from tests.conftest import REPO_ROOT, TINY_OVERRIDES, run_torchrun


@pytest.mark.integration
@pytest.mark.torchrun
def test_finetune_entrypoint_under_torchrun(tmp_path, mlflow_uri):
    params = load_project_params(REPO_ROOT / "params.yaml", TINY_OVERRIDES)
    data, base = tmp_path / "data", tmp_path / "base"
    data_prep.run(params.data_prep, "tiny", data, tmp_path / "reports/data")
    pretrain.run(params.pretrain, params.model, "tiny", data, base, tmp_path / "reports/pretrain")

    overrides = [arg for o in TINY_OVERRIDES for arg in ("--set", o)]
    args = [
        *("-m", "components.epi_finetune", "--params", str(REPO_ROOT / "params.yaml")),
        *overrides,
        *("--set", "finetune.method=epi", "--set", "finetune.isolation.mask_interval=2"),
        *("--data", str(data), "--base", str(base), "--out", str(tmp_path / "sft")),
        *("--reports", str(tmp_path / "reports/finetune")),
        *("--metrics", str(tmp_path / "metrics.json")),
    ]
    run = run_torchrun(args, tmp_path, {**os.environ, "MLFLOW_TRACKING_URI": mlflow_uri})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "parallel_mode != ParallelMode.DISTRIBUTED" not in run.stdout + run.stderr  # real DDP
    assert (tmp_path / "sft/config.json").is_file()  # rank 0 saved the model, nobody clobbered it
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["train_loss"] > 0
    runs = MlflowClient(mlflow_uri).search_runs(
        [e.experiment_id for e in MlflowClient(mlflow_uri).search_experiments()]
    )
    finetune_runs = [r for r in runs if r.info.run_name == "finetune"]
    assert len(finetune_runs) == 1  # tracked by rank 0 only
