"""RLHB end to end on a small simulated service: the KFP pipeline pipelines/rlhb.py under
kfp.local.SubprocessRunner (each task calls the same run() as its DVC stage), then the registered
generator answering a bare query from the registry, b* already in its prompt template."""

import mlflow
import pytest

from tests.kfp_local import run_locally

pytestmark = pytest.mark.integration

RLHB_SMALL = [
    "rlhb_data.logs=300",
    "rlhb.sft_steps=10",
    "rlhb.iterations=2",
    "rlhb.scorer.warmup_steps=5",
    "rlhb.eval_samples=1",
    "rlhb.arms=[rlhf]",
]


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory):
    from pipelines.rlhb import build_pipeline

    root = tmp_path_factory.mktemp("rlhb")
    with run_locally(build_pipeline, RLHB_SMALL, root) as (outputs, dirs, uri):
        yield outputs, uri


def test_kfp_pipeline_runs_every_stage(pipeline_run):
    outputs, _ = pipeline_run
    assert set(outputs) == {"rlhb-data-op", "rlhb-train-op", "rlhb-evaluate-op"}
    assert outputs["rlhb-data-op"]["logs"] == 300
    assert "rlhf.final_reward" in outputs["rlhb-train-op"]
    evaluation = outputs["rlhb-evaluate-op"]
    for arm in ("sft", "rlhb", "rlhf"):
        assert -0.27 <= evaluation[f"{arm}.score"] <= 0.19, arm


def test_the_champion_generator_answers_from_the_registry(pipeline_run):
    _, uri = pipeline_run
    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model("models:/rlhb-generator@champion")
    answers = model.predict(["how do i get better at chess"])
    assert len(answers) == 1 and isinstance(answers[0], str)
