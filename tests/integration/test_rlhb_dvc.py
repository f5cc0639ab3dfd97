"""RLHB's DVC stages, for real: `dvc repro rlhb_evaluate` in a copy of the repo (check, then
rlhb_data, rlhb_train, rlhb_evaluate), each writing its metrics file, and the generator in the
registry; then `dvc status` is clean."""

import json
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from pipelines.params import load_project_params
from tests.conftest import copy_repo, dvc

pytestmark = pytest.mark.integration

SMALL = [
    "rlhb_data.logs=300",
    "rlhb.sft_steps=10",
    "rlhb.iterations=2",
    "rlhb.scorer.warmup_steps=5",
    "rlhb.eval_samples=1",
]


@pytest.fixture(scope="module")
def dvc_repo(tmp_path_factory) -> Path:
    repo = copy_repo(tmp_path_factory.mktemp("repo"))
    params = load_project_params(repo / "params.yaml", SMALL)
    (repo / "params.yaml").write_text(yaml.safe_dump(params.model_dump(mode="json")))
    result = dvc(repo, "repro", "rlhb_evaluate")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return repo


def test_each_stage_writes_its_metrics_and_the_generator_is_champion(dvc_repo):
    for stage in ("rlhb_data", "rlhb_train", "rlhb_evaluate"):
        assert (dvc_repo / f"metrics/{stage}.json").is_file(), stage
    evaluation = json.loads((dvc_repo / "metrics/rlhb_evaluate.json").read_text())
    assert -0.27 <= evaluation["rlhb.score"] <= 0.19
    client = MlflowClient(f"sqlite:///{dvc_repo / 'mlflow.db'}")
    champion = client.get_model_version_by_alias("rlhb-generator", "champion")
    assert champion.tags["b_star"].startswith("[User behavior] views: 5/5")


def test_dvc_status_is_clean_after_repro(dvc_repo):
    result = dvc(dvc_repo, "status", "rlhb_evaluate")
    assert result.returncode == 0 and "changed" not in result.stdout, result.stdout
