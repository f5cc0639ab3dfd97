"""GOVERN's DVC stages, for real: `dvc repro govern_evaluate` in a copy of the repo (check, then
govern_data, govern_distill, govern_evaluate), each writing its metrics file, and the student in
the registry; then `dvc status` is clean."""

import json
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from pipelines.params import load_project_params
from tests.conftest import copy_repo, dvc

pytestmark = pytest.mark.integration

SMALL = [
    "govern_data.sizes={unlabeled: 400, labeled: 80, dev: 80, test: 200}",
    "govern.epochs=1",
    "govern.supervised_epochs=1",
]


@pytest.fixture(scope="module")
def dvc_repo(tmp_path_factory) -> Path:
    repo = copy_repo(tmp_path_factory.mktemp("repo"))
    params = load_project_params(repo / "params.yaml", SMALL)
    (repo / "params.yaml").write_text(yaml.safe_dump(params.model_dump(mode="json")))
    result = dvc(repo, "repro", "govern_evaluate")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return repo


def test_each_stage_writes_its_metrics_and_the_student_is_champion(dvc_repo):
    for stage in ("govern_data", "govern_distill", "govern_evaluate"):
        assert (dvc_repo / f"metrics/{stage}.json").is_file(), stage
    evaluation = json.loads((dvc_repo / "metrics/govern_evaluate.json").read_text())
    assert 0.5 < evaluation["govern.auc"] <= 1
    client = MlflowClient(f"sqlite:///{dvc_repo / 'mlflow.db'}")
    champion = client.get_model_version_by_alias("govern-student", "champion")
    assert champion.tags["student"] == "supervised_govern"


def test_dvc_status_is_clean_after_repro(dvc_repo):
    result = dvc(dvc_repo, "status", "govern_evaluate")
    assert result.returncode == 0 and "changed" not in result.stdout, result.stdout
