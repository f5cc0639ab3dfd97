"""The whole vertical slice, for real: `dvc repro` in a copy of the repo, then the same steps as a
KFP pipeline under kfp.local.SubprocessRunner; both register `sft-model` in MLflow."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from pipelines.params import load_project_params
from tests.conftest import TINY_OVERRIDES, copy_repo, venv_env

pytestmark = pytest.mark.integration


# The LLM slice of dvc.yaml (the segmentation and reward stages have their own tests).
LLM_STAGES = ["evaluate", "ilp_diagnosis"]


@pytest.fixture(scope="module")
def dvc_repo(tmp_path_factory) -> Path:
    repo = copy_repo(tmp_path_factory.mktemp("repo"))
    params = load_project_params(repo / "params.yaml", TINY_OVERRIDES)
    (repo / "params.yaml").write_text(yaml.safe_dump(params.model_dump(mode="json")))
    env = venv_env(MLFLOW_TRACKING_URI=f"sqlite:///{repo / 'mlflow.db'}")
    result = subprocess.run(
        [sys.executable, "-m", "dvc", "repro", *LLM_STAGES],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return repo


def test_dvc_repro_writes_metrics_and_registers_champion(dvc_repo):
    metrics = json.loads((dvc_repo / "metrics/evaluate.json").read_text())
    assert {
        "accuracy_mean",
        "accuracy.reverse",
        "accuracy.add",
        "accuracy.recall",
        "accuracy.fact_qa",
    } <= set(metrics)
    for step in ("data_prep", "pretrain", "finetune", "ilp_diagnosis"):
        assert (dvc_repo / "metrics" / f"{step}.json").is_file()
    assert (dvc_repo / "reports/finetune/loss.png").stat().st_size > 1000

    client = MlflowClient(f"sqlite:///{dvc_repo / 'mlflow.db'}")
    challenger = client.get_model_version_by_alias("sft-model", "challenger")
    champion = client.get_model_version_by_alias("sft-model", "champion")
    assert str(challenger.version) == str(champion.version) == "1"
    runs = client.search_runs([client.get_experiment_by_name("mlops-methods").experiment_id])
    assert {r.data.tags["step"] for r in runs} == {
        "data_prep",
        "pretrain",
        "finetune",
        "ilp_diagnosis",
        "evaluate",
    }
    assert all(r.data.tags["profile"] == "tiny" for r in runs)


def test_dvc_status_is_clean_after_repro(dvc_repo):
    status = subprocess.run(
        [sys.executable, "-m", "dvc", "status", "--json", *LLM_STAGES],
        cwd=dvc_repo,
        env=venv_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(status.stdout) == {}


def test_kfp_local_pipeline_produces_the_dvc_metric_keys(dvc_repo, tmp_path, monkeypatch):
    from kfp import local

    from pipelines.llm import build_pipeline

    monkeypatch.chdir(tmp_path)  # checkpoints and caches land here
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    root = tmp_path / "pipeline_root"
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    params = load_project_params(dvc_repo / "params.yaml")
    build_pipeline(params)()

    outputs = {}
    for step_dir in next(root.iterdir()).iterdir():
        executor = json.loads((step_dir / "executor_output.json").read_text())
        outputs[step_dir.name] = executor["artifacts"]["metrics"]["artifacts"][0]["metadata"]
    for step, op in [
        ("data_prep", "data-prep-op"),
        ("pretrain", "pretrain-op"),
        ("finetune", "finetune-op"),
        ("ilp_diagnosis", "ilp-diagnosis-op"),
        ("evaluate", "evaluate-op"),
    ]:
        dvc_metrics = json.loads((dvc_repo / "metrics" / f"{step}.json").read_text())
        assert set(outputs[op]) == set(dvc_metrics), step
    # same data, same seed: the data step agrees exactly
    assert outputs["data-prep-op"] == json.loads((dvc_repo / "metrics/data_prep.json").read_text())
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert str(client.get_model_version_by_alias("sft-model", "champion").version) == "1"


def test_kfp_local_pipeline_can_pass_its_models_through_the_workspace(
    dvc_repo, tmp_path, monkeypatch
):
    from kfp import local

    from components.common.kfp_outputs import WORKSPACE_POINTER
    from pipelines.llm import build_pipeline

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    root, workspace = tmp_path / "pipeline_root", tmp_path / "workspace"
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(root),
        workspace_root=str(workspace),
    )
    build_pipeline(load_project_params(dvc_repo / "params.yaml"), models_in_workspace=True)()

    run_dir = next(root.iterdir())
    for op in ("pretrain-op", "finetune-op"):
        (model,) = (run_dir / op / "model").iterdir()  # only the pointer travels as an artifact
        assert model.name == WORKSPACE_POINTER
        assert Path(json.loads(model.read_text())["path"]).parent == workspace / "models"
    assert not workspace.exists()  # kfp.local removes the run's workspace, as a cluster would
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert str(client.get_model_version_by_alias("sft-model", "champion").version) == "1"
