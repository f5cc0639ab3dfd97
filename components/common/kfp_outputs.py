"""What every KFP component wrapper does with a step's result.

Large models do not travel as KFP artifacts (an upload and a download per task): a pipeline built
with its models in the run's workspace (a PVC) writes each model there, and the `Model` artifact
holds only a pointer file to it. Small models stay artifacts; `model_input_dir` reads both.
Every task that writes or reads a model there takes `workspace=dsl.WORKSPACE_PATH_PLACEHOLDER`:
that input is what makes the KFP driver mount the PVC into its pod."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

WORKSPACE_POINTER = "workspace.json"


def log_step_metrics(artifact: Any, metrics: dict[str, float]) -> None:
    """Copy a step's metrics onto its KFP `Metrics` output (shown in the Kubeflow UI)."""
    for key, value in metrics.items():
        artifact.log_metric(key, float(value))


def point_to(artifact: Any, directory: Path) -> Path:
    """Make `artifact` a pointer to `directory` in the workspace (also shown as its metadata)."""
    Path(artifact.path).mkdir(parents=True, exist_ok=True)
    (Path(artifact.path) / WORKSPACE_POINTER).write_text(json.dumps({"path": str(directory)}))
    artifact.metadata["workspace_path"] = str(directory)
    return directory


def model_output_dir(artifact: Any, workspace: str) -> Path:
    """Where a step writes the model behind `artifact`: the artifact's own directory, or with a
    workspace a fresh directory there that the artifact points to."""
    if not workspace:
        return Path(artifact.path)
    name = f"{artifact.name}-{uuid.uuid4().hex[:12]}"
    return point_to(artifact, Path(workspace) / "models" / name)


def model_input_dir(artifact: Any, workspace: str) -> Path:
    """The directory of the model an upstream step wrote (in the workspace when it points there)."""
    pointer = Path(artifact.path) / WORKSPACE_POINTER
    if not pointer.is_file():
        return Path(artifact.path)
    directory = Path(json.loads(pointer.read_text())["path"])
    if not workspace:
        raise FileNotFoundError(
            f"model input {artifact.name!r} points to {directory} in the run workspace, which this "
            "task has not mounted: pass workspace=dsl.WORKSPACE_PATH_PLACEHOLDER to it"
        )
    if not directory.is_dir():
        raise FileNotFoundError(
            f"model input {artifact.name!r} points to {directory}, which is not in the run "
            f"workspace mounted at {workspace} (was it written by another run?)"
        )
    return directory
