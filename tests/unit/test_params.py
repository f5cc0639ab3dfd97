import pytest

from components.common.io import ProjectError
from pipelines.params import load_project_params


def write(tmp_path, text):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


def test_defaults_validate(tmp_path):
    params = load_project_params(write(tmp_path, "profile: tiny\n"))
    assert params.finetune.method == "epi"


def test_repo_params_file_is_valid():
    from tests.conftest import REPO_ROOT

    assert load_project_params(REPO_ROOT / "params.yaml").profile == "tiny"


def test_unknown_key_names_the_key(tmp_path):
    path = write(tmp_path, "finetune:\n  learning_rat: 0.1\n")
    with pytest.raises(ProjectError) as error:
        load_project_params(path)
    assert error.value.field == "finetune.learning_rat"
    assert "params.yaml" in str(error.value) and "finetune.learning_rat" in str(error.value)


def test_wrong_type_names_the_key(tmp_path):
    with pytest.raises(ProjectError) as error:
        load_project_params(write(tmp_path, "pretrain:\n  max_steps: many\n"))
    assert error.value.field == "pretrain.max_steps"


def test_unknown_profile(tmp_path):
    with pytest.raises(ProjectError) as error:
        load_project_params(write(tmp_path, "profile: huge\n"))
    assert error.value.field == "profile"


def test_overrides_are_parsed_as_yaml(tmp_path):
    params = load_project_params(write(tmp_path, ""), ["finetune.max_steps=7", "finetune.lora.r=4"])
    assert params.finetune.max_steps == 7 and params.finetune.lora.r == 4
    with pytest.raises(ProjectError) as error:
        load_project_params(write(tmp_path, ""), ["finetune.nope=1"])
    assert error.value.field == "finetune.nope"


def test_user_source_needs_a_file(tmp_path):
    with pytest.raises(ProjectError) as error:
        load_project_params(write(tmp_path, "data_prep:\n  source: user\n"))
    assert "user_train" in str(error.value)


def test_cli_prints_one_line_and_exits_2(tmp_path, capsys):
    from components.data_prep.__main__ import main

    path = write(tmp_path, "data_prep:\n  seed: x\n")
    assert main(["--params", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "data_prep.seed" in err and "\n" not in err
    assert not (tmp_path / "out").exists()
