"""Segmentation for real on tiny volumes: train → evaluate (MLflow registry, overlays) → predict a
user's NIfTI in-process, then the KFP pipeline under kfp.local and its compiled IR."""

import csv
import json

import mlflow
import nibabel as nib
import numpy as np
import pytest
from mlflow import MlflowClient

from components.common.io import write_json
from components.common.nifti import save_nifti
from components.seg_train import evaluate_step, predict, train_step
from components.seg_train.params import SegTrainParams
from pipelines.params import load_project_params
from tests.conftest import REPO_ROOT
from tests.ct_volumes import write_tiny_task

pytestmark = pytest.mark.integration

TINY_SEG = {
    "iterations": 2,
    "holdout_per_domain": 1,
    "num_threads": 1,
    "log_every": 1,
    "overlay_cases": 1,
    "inference": {"roi_size": [16, 16, 16]},
}
TINY_OVERRIDES = [
    "ct_data.cases_per_domain=3",
    "ct_data.shape=[24, 24, 16]",
    *(f"seg_train.{key}={json.dumps(value)}" for key, value in TINY_SEG.items()),
]


@pytest.fixture
def tiny_ct(tmp_path):
    """Three 16³ "sites" whose lesions differ in contrast (C is brighter than its pancreas)."""
    data = tmp_path / "ct"
    for seed, (name, contrast) in enumerate((("A", 60.0), ("B", 40.0), ("C", -50.0))):
        write_tiny_task(data / name, n_cases=3, contrast=contrast, seed=seed)
    write_json(data / "domains.json", {name: name for name in "ABC"})
    return data


def test_train_evaluate_register_and_predict_on_16_cubed_volumes(tiny_ct, tmp_path, mlflow_uri):
    params = SegTrainParams.model_validate(TINY_SEG)
    model_dir, reports = tmp_path / "models/seg", tmp_path / "reports"
    trained = train_step.run(params, "tiny", tiny_ct, model_dir, reports / "train")
    assert trained["iterations"] == 2 and trained["train_cases"] == 4
    assert np.isfinite(trained["final_loss"])
    with open(reports / "train/loss.csv") as handle:
        columns = csv.DictReader(handle).fieldnames
    assert {"loss", "seg", "sdf", "reciprocal", "consistency"} <= set(columns)
    assert sorted(p.name for p in model_dir.iterdir()) == ["config.json", "model.pt"]

    metrics = evaluate_step.run(params, "tiny", tiny_ct, model_dir, reports / "evaluate")
    for key in ("dice.A", "dice.B", "dice.C", "dice_val", "dice_test", "hd95_test"):
        assert key in metrics
    assert 0 <= metrics["dice_test"] <= 1 and metrics["hd95_test"] >= 0
    assert metrics["registered_version"] == 1 and metrics["promoted"] == 1
    client = MlflowClient(mlflow_uri)
    champion = client.get_model_version_by_alias("pancreas-seg", "champion")
    assert (
        champion.version == client.get_model_version_by_alias("pancreas-seg", "challenger").version
    )
    overlays = client.list_artifacts(champion.run_id, "overlays")
    assert {a.path for a in overlays} == {f"overlays/overlay_{d}.png" for d in "ABC"}

    # the registered model segments a user's volume; the mask lands on the input's grid
    image = tiny_ct / "C/imagesTr/case_000.nii.gz"
    out = tmp_path / "pred.nii.gz"
    assert mlflow.pytorch.load_model("models:/pancreas-seg@champion").config["sdf_head"]
    for extra in ([], ["--pancreas", str(tiny_ct / "C/labelsTr/case_000.nii.gz")]):
        argv = [
            "--model",
            "models:/pancreas-seg@champion",
            "--image",
            str(image),
            "--out",
            str(out),
        ]
        assert predict.main(argv + extra) == 0
        written, source = nib.load(out), nib.load(image)
        assert written.shape == source.shape and np.allclose(written.affine, source.affine)
        assert set(np.unique(written.get_fdata())) <= {0.0, 1.0}

    bad = tmp_path / "nan.nii.gz"
    array = nib.load(image).get_fdata().astype(np.float32)
    array[0, 0, 0] = np.nan
    save_nifti(bad, array, nib.load(image).affine)
    assert predict.main(["--model", str(model_dir), "--image", str(bad), "--out", str(out)]) == 2


def test_kfp_local_segmentation_pipeline(tmp_path, monkeypatch):
    from kfp import local

    from pipelines.segmentation import build_pipeline

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    root = tmp_path / "pipeline_root"
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    build_pipeline(load_project_params(REPO_ROOT / "params.yaml", TINY_OVERRIDES))()

    outputs = {}
    for step_dir in next(root.iterdir()).iterdir():
        executor = json.loads((step_dir / "executor_output.json").read_text())
        outputs[step_dir.name] = executor["artifacts"]["metrics"]["artifacts"][0]["metadata"]
    assert outputs["ct-data-op"]["cases.C"] == 3
    assert outputs["seg-train-op"]["iterations"] == 2
    assert {"dice_val", "dice_test", "dice.C", "hd95.C", "recall.C"} <= set(
        outputs["seg-evaluate-op"]
    )
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert str(client.get_model_version_by_alias("pancreas-seg", "champion").version) == "1"


def test_compiled_segmentation_ir_never_caches_training_or_registry(tmp_path):
    import yaml
    from kfp import compiler

    from pipelines.segmentation import build_pipeline

    path = tmp_path / "segmentation.yaml"
    compiler.Compiler().compile(
        build_pipeline(load_project_params(REPO_ROOT / "params.yaml")), str(path)
    )
    tasks = next(yaml.safe_load_all(path.read_text()))["root"]["dag"]["tasks"]
    assert set(tasks) == {"ct-data-op", "seg-train-op", "seg-evaluate-op"}
    for name in ("seg-train-op", "seg-evaluate-op"):
        assert not tasks[name]["cachingOptions"].get("enableCache", False)
