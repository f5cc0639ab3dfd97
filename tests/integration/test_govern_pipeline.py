"""GOVERN end to end on a small world: the KFP pipeline pipelines/govern.py under
kfp.local.SubprocessRunner (each task calls the same run() as its DVC stage), then the registered
student scoring samples from the registry with nothing of this project imported."""

import json

import mlflow
import numpy as np
import pytest

from pipelines.params import load_project_params
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration

GOVERN_SMALL = [
    "govern_data.sizes={unlabeled: 600, labeled: 100, dev: 100, test: 300}",
    "govern.epochs=2",
    "govern.supervised_epochs=2",
]


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory):
    from kfp import local

    from pipelines.govern import build_pipeline

    root = tmp_path_factory.mktemp("govern")
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mp.setenv("MLFLOW_TRACKING_URI", uri)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root / "runs"))
    build_pipeline(load_project_params(REPO_ROOT / "params.yaml", GOVERN_SMALL))()
    outputs = {}
    for step_dir in next((root / "runs").iterdir()).iterdir():
        executor = json.loads((step_dir / "executor_output.json").read_text())
        outputs[step_dir.name] = executor["artifacts"]["metrics"]["artifacts"][0]["metadata"]
    yield outputs, uri
    mp.undo()


def test_kfp_pipeline_runs_every_stage(pipeline_run):
    outputs, _ = pipeline_run
    assert set(outputs) == {"govern-data-op", "govern-distill-op", "govern-evaluate-op"}
    assert outputs["govern-data-op"]["unlabeled_samples"] == 600
    evaluation = outputs["govern-evaluate-op"]
    for name in ("govern", "mean", "median", "aekd", "supervised_govern", "ensemble_mean"):
        assert 0.5 < evaluation[f"{name}.auc"] <= 1, name
    shares = [evaluation[f"teacher_{k}.majority_share"] for k in range(1, 6)]
    assert all(0 < s <= 1 for s in shares)


def test_the_champion_student_scores_samples_from_the_registry(pipeline_run):
    _, uri = pipeline_run
    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model("models:/govern-student@champion")
    logits = model.predict(np.zeros((3, 32), dtype=np.float32))
    assert np.asarray(logits).shape == (3,)
