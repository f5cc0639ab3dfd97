"""What a user meets at the command line: `--help` of every DVC stage, `make help`, `--set`
errors, and the segmentation `predict` command's errors."""

import importlib.util
import re
import runpy
import shlex
import subprocess
import sys

import pytest
import yaml

from components.common.io import ProjectError
from components.common.params import load_params
from components.epi_finetune.params import FinetuneStep
from tests.conftest import REPO_ROOT

STAGES = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


def run_module_help(monkeypatch, capsys, module: str, *args: str) -> tuple[int, str]:
    """`python -m <module> <args> --help` in this process (one import of torch for all)."""
    monkeypatch.setattr(sys, "argv", [module, *args, "--help"])
    is_package = importlib.util.find_spec(module).submodule_search_locations is not None
    # runpy warns when it runs a module that an earlier test imported
    monkeypatch.delitem(sys.modules, f"{module}.__main__" if is_package else module, raising=False)
    with pytest.raises(SystemExit) as exit_:
        runpy.run_module(module, run_name="__main__")
    return exit_.value.code, capsys.readouterr().out


def stage_command(stage: str) -> tuple[str, list[str]]:
    """The module of a dvc.yaml stage's `python -m` command and its stage word, if any."""
    words = shlex.split(STAGES[stage]["cmd"])
    module = words[words.index("-m") + 1]
    rest = words[words.index("-m") + 2 :]
    return module, rest[:1] if rest and not rest[0].startswith("-") else []


def assert_named_modules_exist(text: str) -> None:
    for module in re.findall(r"python -m ([\w.]+)", text):
        assert importlib.util.find_spec(module) is not None, f"--help names {module}"


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_stage_help_says_what_it_reads_and_every_path(stage, monkeypatch, capsys):
    module, stage_word = stage_command(stage)
    code, out = run_module_help(monkeypatch, capsys, module, *stage_word)
    assert code == 0
    if module.startswith("components."):  # a step (pipelines.check reads the whole file)
        reads = re.search(r"reads params\.yaml: (.*)", out)
        assert reads, out
        words = shlex.split(STAGES[stage]["cmd"])
        # `--section finetune=knowtuning_sft`: the step's `finetune` is read from knowtuning_sft
        read_as = dict(
            reversed(words[i + 1].split("=")) for i, w in enumerate(words) if w == "--section"
        )
        for section in STAGES[stage].get("params", []):
            key = section.split(".")[0]
            assert read_as.get(key, key) in reads.group(1).split(", ")
    for flag in (word for word in shlex.split(STAGES[stage]["cmd"]) if word.startswith("--")):
        described = re.search(rf"^  {flag} \S+\s+(\S.*)$", out, re.M)
        assert described, f"{flag} has no help in {module} {stage_word}"
    assert_named_modules_exist(out)


@pytest.mark.parametrize(
    "room", ["components.grm_scorer", "components.seg_train", "components.knowtuning"]
)
def test_a_multi_stage_room_lists_its_stages(room, monkeypatch, capsys):
    code, out = run_module_help(monkeypatch, capsys, room)
    assert code == 0
    stages = {stage_word[0] for module, stage_word in map(stage_command, STAGES) if module == room}
    listed = out.split("stages:\n", 1)[1]
    for stage in stages:
        assert re.search(rf"^  {stage} +\S", listed, re.M), out
    assert_named_modules_exist(out)


def test_predict_help_describes_every_argument(monkeypatch, capsys):
    code, out = run_module_help(monkeypatch, capsys, "components.seg_train.predict")
    assert code == 0
    for flag in ("--model", "--image", "--pancreas", "--out"):
        assert re.search(rf"^  {flag} \S+\s+\S", out, re.M), flag
    assert ".nii.gz" in out
    assert_named_modules_exist(out)


def test_make_help_lists_every_target_with_a_line():
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    phony = re.search(r"^\.PHONY: (.*)$", makefile, re.M).group(1).split()
    out = subprocess.run(
        ["make", "--no-print-directory", "help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for target in phony:
        assert re.search(rf"^{target} +\S", out, re.M), f"make help has no line for {target}"


def test_an_unparseable_set_value_is_one_line_naming_the_assignment(tmp_path, capsys):
    from components.data_prep.__main__ import main

    params = tmp_path / "params.yaml"
    params.write_text("profile: tiny\n")
    out = tmp_path / "out"
    assert main(["--params", str(params), "--out", str(out), "--set", "data_prep.tasks=[add"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --set data_prep.tasks=[add") and "\n" not in err
    assert "invalid YAML" in err and not out.exists()


@pytest.mark.parametrize(
    ("overrides", "blamed"),
    [
        (["finetune.max_steps=x"], "--set finetune.max_steps=x"),
        (["finetune={max_steps: x}"], "--set finetune={max_steps: x}"),
        (["finetune.max_steps=5", "finetune.nope=1"], "--set finetune.nope=1"),
        (["nope.x=1"], "--set nope.x=1"),
    ],
)
def test_a_bad_set_value_is_blamed_on_the_set(tmp_path, overrides, blamed):
    params = tmp_path / "params.yaml"
    params.write_text("finetune:\n  max_steps: 3\n")
    with pytest.raises(ProjectError) as error:
        load_params(params, overrides, FinetuneStep)
    assert str(error.value).startswith(f"{blamed} [")
    assert str(params) not in str(error.value)


def test_a_bad_file_value_is_still_blamed_on_the_file(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("finetune:\n  max_steps: x\n")
    with pytest.raises(ProjectError) as error:
        load_params(params, ["finetune.learning_rate=0.1"], FinetuneStep)
    assert str(error.value).startswith(f"{params} [finetune.max_steps]")


def test_predict_names_a_missing_registered_model(mlflow_uri, tmp_path, capsys):
    from components.seg_train.predict import main

    uri = "models:/no-such-model@champion"
    out = tmp_path / "mask.nii.gz"
    assert main(["--model", uri, "--image", str(tmp_path / "ct.nii.gz"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {uri}") and "\n" not in err
    assert not out.exists()


def test_predict_refuses_a_non_nifti_out_before_any_work(tmp_path, capsys):
    from components.seg_train.predict import main

    args = ["--model", str(tmp_path / "no-model"), "--image", str(tmp_path / "no.nii.gz")]
    assert main([*args, "--out", str(tmp_path / "mask.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert "[--out]" in err and ".nii.gz" in err and "\n" not in err
