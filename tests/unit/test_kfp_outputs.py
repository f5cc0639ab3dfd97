import json
import shutil
from types import SimpleNamespace

import pytest

from components.common.kfp_outputs import (
    WORKSPACE_POINTER,
    model_input_dir,
    model_output_dir,
)


def artifact(tmp_path, name="model"):
    return SimpleNamespace(name=name, path=str(tmp_path / "artifacts" / name), metadata={})


def test_without_a_workspace_the_model_is_the_artifact(tmp_path):
    model = artifact(tmp_path)
    assert model_output_dir(model, "") == tmp_path / "artifacts" / "model"
    assert model_input_dir(model, "") == tmp_path / "artifacts" / "model"
    assert model.metadata == {}


def test_with_a_workspace_the_artifact_points_to_a_fresh_directory_there(tmp_path):
    workspace = tmp_path / "workspace"
    model = artifact(tmp_path)
    first = model_output_dir(model, str(workspace))
    assert first.parent == workspace / "models" and first.name.startswith("model-")
    assert model_output_dir(artifact(tmp_path / "other"), str(workspace)) != first
    pointer = json.loads((tmp_path / "artifacts/model" / WORKSPACE_POINTER).read_text())
    assert pointer == {"path": str(first)} and model.metadata["workspace_path"] == str(first)
    first.mkdir(parents=True)  # the step writes the model there
    assert model_input_dir(model, str(workspace)) == first


def test_reading_a_workspace_model_without_its_workspace_says_what_is_wrong(tmp_path):
    model = artifact(tmp_path)
    workspace = tmp_path / "workspace"
    model_output_dir(model, str(workspace)).mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="WORKSPACE_PATH_PLACEHOLDER"):
        model_input_dir(model, "")
    shutil.rmtree(workspace)  # a later run's workspace no longer has it
    with pytest.raises(FileNotFoundError, match="another run"):
        model_input_dir(model, str(workspace))
