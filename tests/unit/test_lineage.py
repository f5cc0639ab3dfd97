"""The lineage tags of a step's MLflow run: the image's baked-in commit without a checkout, and the
KFP run, pipeline version and image from the environment a cluster task gets."""

import subprocess

import mlflow

from components.common import tracking


def test_lineage_tags_are_the_variables_that_are_set():
    environ = {
        "KFP_RUN_ID": "3f2a",
        "KFP_RUN_NAME": "llm-run",
        "KFP_PIPELINE_VERSION": "mlops-methods-llm-20250101-000000",
        "MLOPS_IMAGE": "ghcr.io/mlops-methods/mlops-methods-cuda:0.2.0",
    }
    assert tracking.lineage_tags(environ) == {
        "kfp_run_id": "3f2a",
        "kfp_run_name": "llm-run",
        "kfp_pipeline_version": "mlops-methods-llm-20250101-000000",
        "image": "ghcr.io/mlops-methods/mlops-methods-cuda:0.2.0",
    }


def test_no_lineage_tags_outside_a_cluster_run_or_for_empty_values():
    assert tracking.lineage_tags({}) == {}
    assert tracking.lineage_tags({"KFP_RUN_ID": "", "MLOPS_IMAGE": "img:1"}) == {"image": "img:1"}


def test_git_commit_falls_back_to_the_commit_baked_into_the_image(monkeypatch):
    def no_checkout(*args, **kwargs):
        raise subprocess.CalledProcessError(128, args[0])

    monkeypatch.setattr(tracking.subprocess, "run", no_checkout)
    monkeypatch.setenv("MLOPS_GIT_COMMIT", "abc123")
    assert tracking.git_commit() == "abc123"
    monkeypatch.delenv("MLOPS_GIT_COMMIT")
    assert tracking.git_commit() == "unknown"


def test_step_run_records_the_lineage_tags(mlflow_uri, monkeypatch):
    monkeypatch.setenv("KFP_RUN_ID", "run-7")
    monkeypatch.setenv("KFP_PIPELINE_VERSION", "v-9")
    monkeypatch.setenv("MLOPS_IMAGE", "img:1")
    monkeypatch.delenv("KFP_RUN_NAME", raising=False)
    with tracking.step_run("finetune", "tiny") as run:
        run_id = run.info.run_id
    tags = mlflow.get_run(run_id).data.tags
    assert tags["kfp_run_id"] == "run-7" and tags["kfp_pipeline_version"] == "v-9"
    assert tags["image"] == "img:1" and "kfp_run_name" not in tags
    assert tags["step"] == "finetune" and tags["profile"] == "tiny" and tags["git_commit"]
