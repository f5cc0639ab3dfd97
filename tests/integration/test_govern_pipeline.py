"""GOVERN end to end on a small world: the KFP pipeline pipelines/govern.py under
kfp.local.SubprocessRunner (each task calls the same run() as its DVC stage), then the registered
student scoring samples from the registry with nothing of this project imported."""

import mlflow
import numpy as np
import pytest

from tests.kfp_local import run_locally

pytestmark = pytest.mark.integration

GOVERN_SMALL = [
    "govern_data.sizes={unlabeled: 600, labeled: 100, dev: 100, test: 300}",
    "govern.epochs=2",
    "govern.supervised_epochs=2",
]


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory):
    from pipelines.govern import build_pipeline

    root = tmp_path_factory.mktemp("govern")
    with run_locally(build_pipeline, GOVERN_SMALL, root) as (outputs, dirs, uri):
        yield outputs, uri


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
