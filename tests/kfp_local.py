"""A pipeline run end to end under kfp.local, as the pipeline tests need it."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pipelines.params import load_project_params
from tests.conftest import REPO_ROOT


@contextlib.contextmanager
def run_locally(
    build_pipeline: Callable, overrides: list[str], root: Path
) -> Iterator[tuple[dict[str, dict], dict[str, Path], str]]:
    """Run `build_pipeline(params.yaml + overrides)` with kfp.local's SubprocessRunner in `root`
    (the working directory: checkpoints land there), with its own SQLite MLflow store; gives
    each task's metrics (by task folder), each task's folder, and the tracking URI."""
    from kfp import local

    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mp.setenv("MLFLOW_TRACKING_URI", uri)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root / "runs"))
    build_pipeline(load_project_params(REPO_ROOT / "params.yaml", overrides))()
    outputs, dirs = {}, {}
    for step_dir in next((root / "runs").iterdir()).iterdir():
        executor = json.loads((step_dir / "executor_output.json").read_text())
        outputs[step_dir.name] = executor["artifacts"]["metrics"]["artifacts"][0]["metadata"]
        dirs[step_dir.name] = step_dir
    try:
        yield outputs, dirs, uri
    finally:
        mp.undo()
