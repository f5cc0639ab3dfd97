"""Every fine-tuning method and schedule runs end to end through the real Trainer on tiny data."""

import csv

import pytest

from components.data_prep.step import run as prepare
from components.epi_finetune.step import run as finetune
from components.pretrain.step import run as pretrain
from pipelines.params import load_project_params
from tests.conftest import REPO_ROOT, TINY_OVERRIDES

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("finetune")
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    mp.chdir(root)
    params = load_project_params(REPO_ROOT / "params.yaml", TINY_OVERRIDES)
    prepare(params.data_prep, "tiny", root / "data", root / "reports")
    pretrain(params.pretrain, params.model, "tiny", root / "data", root / "base", root / "reports")
    yield params, root
    mp.undo()


def run_method(tiny_base, tmp_path, **updates):
    params, root = tiny_base
    settings = {
        "max_steps": 6,
        "eval_every": 3,
        "dynamics_every": 3,
        "save_steps": 100,
        "cpi": {"probe_steps": 2},
        "isolation": {"mask_interval": 2, "warmup_steps": 2},
    } | updates
    finetune_params = params.finetune.model_validate(params.finetune.model_dump() | settings)
    return finetune(
        finetune_params,
        "tiny",
        root / "data",
        root / "base",
        tmp_path / "model",
        tmp_path / "reports",
    )


@pytest.mark.parametrize(
    "method", ["full", "multistage", "epi", "epi_static", "cpi", "random_mask", "inverse_epi"]
)
@pytest.mark.parametrize("schedule", ["mixed", "sequential"])
def test_each_method_runs(tiny_base, tmp_path, method, schedule):
    metrics = run_method(tiny_base, tmp_path, method=method, schedule=schedule)
    assert (tmp_path / "model" / "config.json").is_file()
    assert {"acc_mean", "forgetting_mean", "conflict_mean", "train_loss"} <= set(metrics)
    if schedule == "sequential" or method in ("multistage", "cpi"):
        assert "bwt" in metrics
    assert "drift.jaccard_random" in metrics  # the engine runs (observe-only for full)
    with (tmp_path / "reports" / "dynamics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {int(r["step"]) for r in rows} == {0, 3, 6}
    assert (tmp_path / "reports" / "task_accuracy.png").is_file()


@pytest.mark.parametrize("extension", ["per_task_ema", "stage_memory"])
def test_epi_extensions_run(tiny_base, tmp_path, extension):
    metrics = run_method(
        tiny_base,
        tmp_path,
        method="epi",
        schedule="sequential",
        isolation={"mask_interval": 2, "warmup_steps": 2, extension: True},
    )
    assert metrics["drift.refreshes"] >= 2


def test_lora_with_epi(tiny_base, tmp_path):
    metrics = run_method(
        tiny_base,
        tmp_path,
        method="epi",
        lora={"enabled": True, "r": 2, "target_modules": ["q_proj", "v_proj"]},
    )
    assert metrics["drift.refreshes"] >= 2
    assert (tmp_path / "model" / "config.json").is_file()  # merged back into a plain model
