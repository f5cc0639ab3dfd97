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


def test_project_sections_are_the_sections_of_the_whole_file():
    from components.common.params import PROJECT_SECTIONS
    from pipelines.params import ProjectParams

    assert set(PROJECT_SECTIONS) == set(ProjectParams.model_fields)


def test_a_step_reads_its_own_sections_and_leaves_the_others_to_their_steps(tmp_path):
    from components.common.params import load_params
    from components.pretrain.params import PretrainStep

    path = write(tmp_path, "pretrain:\n  max_steps: 5\ngrm:\n  seed: not-a-number\n")
    params = load_params(path, [], PretrainStep)
    assert params.pretrain.max_steps == 5 and params.profile == "tiny"
    assert not hasattr(params, "grm")


def test_an_unknown_section_is_named(tmp_path):
    from components.common.params import load_params
    from components.pretrain.params import PretrainStep

    with pytest.raises(ProjectError) as error:
        load_params(write(tmp_path, "pretrian:\n  max_steps: 5\n"), [], PretrainStep)
    assert error.value.field == "pretrian" and "known: profile, model" in str(error.value)


def test_trainer_params_map_to_training_arguments(tmp_path):
    from components.common.params import TrainerParams

    params = TrainerParams(max_steps=40, batch_size=8, learning_rate=0.5, warmup_ratio=0.1)
    args = params.to_training_arguments(tmp_path, seed=3, save_strategy="no")
    # warmup: int(0.1 * 40) = 4 steps; the rest passes through, overrides last
    assert (args.max_steps, args.per_device_train_batch_size, args.warmup_steps) == (40, 8, 4)
    assert (args.learning_rate, args.weight_decay, args.seed) == (0.5, 0.01, 3)
    assert args.save_strategy == "no" and args.output_dir == str(tmp_path)
