"""`python -m pipelines.submit`: argument handling, and a fast, clear failure when the Kubeflow
Pipelines host cannot be reached (no cluster needed)."""

import subprocess
import sys
import time

import pytest

from pipelines import submit
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration

UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens there


def test_pipeline_and_host_are_required_and_checked(capsys):
    with pytest.raises(SystemExit) as missing:
        submit.parse_args(["--pipeline", "llm"])
    assert missing.value.code == 2 and "--host" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        submit.parse_args(["--host", UNREACHABLE, "--pipeline", "nope"])
    assert "invalid choice" in capsys.readouterr().err
    args = submit.parse_args(
        ["--host", UNREACHABLE, "--pipeline", "full", "--set", "finetune.max_steps=3"]
    )
    assert args.overrides == ["finetune.max_steps=3"] and args.experiment == "mlops-methods"


def test_pipeline_arguments_are_parsed_as_yaml():
    assert submit.pipeline_arguments(["accelerator_count=2", "node_selector={pool: a100}"]) == {
        "accelerator_count": 2,
        "node_selector": {"pool": "a100"},
    }
    with pytest.raises(submit.SubmitError, match="NAME=VALUE"):
        submit.pipeline_arguments(["accelerator_count"])


def test_finetune_nodes_only_for_pipelines_that_fine_tune():
    options = submit.pipeline_builder_options
    assert options(submit.parse_args(["--host", "h", "--pipeline", "llm", "--finetune-nodes", "2"]))
    assert options(submit.parse_args(["--host", "h", "--pipeline", "segmentation"])) == {}
    with pytest.raises(submit.SubmitError, match="applies to"):
        options(submit.parse_args(["--host", "h", "--pipeline", "reward", "--finetune-nodes", "2"]))


def test_models_go_through_the_workspace_for_pretrained_profiles_unless_told():
    def choice(*flags: str, arguments=None):
        args = submit.parse_args(["--host", "h", *flags])
        return submit.pipeline_builder_options(args, arguments).get("models_in_workspace")

    assert choice("--pipeline", "llm") is None  # decided from params.yaml's profile
    assert choice("--pipeline", "reward", arguments={"profile": "smollm2"}) is True
    assert choice("--pipeline", "full", "--models-in", "artifacts") is False
    assert choice("--pipeline", "segmentation") is None
    with pytest.raises(submit.SubmitError, match="applies to"):
        choice("--pipeline", "segmentation", "--models-in", "workspace")
    with pytest.raises(submit.SubmitError, match="needs its models in the workspace"):
        choice("--pipeline", "llm", "--finetune-nodes", "2", "--models-in", "artifacts")


def test_unreachable_host_fails_fast_naming_the_host():
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.submit", "--host", UNREACHABLE, "--pipeline", "llm"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert f"cannot reach Kubeflow Pipelines at {UNREACHABLE}" in result.stderr
    assert time.monotonic() - started < 60


def test_a_bad_override_is_a_one_line_error(monkeypatch, capsys):
    monkeypatch.setattr(submit, "check_reachable", lambda host: None)
    code = submit.main(
        ["--host", UNREACHABLE, "--pipeline", "llm", "--set", "finetune.no_such_key=1"]
    )
    assert code == 2 and "no_such_key" in capsys.readouterr().err
