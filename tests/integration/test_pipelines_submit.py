"""`python -m pipelines.submit`: argument handling, a fast, clear failure when the Kubeflow
Pipelines host cannot be reached, and whole submits (the real compiler and kfp client) to a fake
KFP API in both namespace modes, with every mistake caught before anything is uploaded."""

import subprocess
import sys
import time

import pytest

from components.common.io import ProjectError
from pipelines import submit
from pipelines.params import load_project_params
from tests.conftest import REPO_ROOT
from tests.fake_kfp_api import FakeKfp, serve

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


@pytest.fixture
def kfp_api(monkeypatch, tmp_path):
    """A fake KFP API (tests/fake_kfp_api.py) for the real kfp client; no local kfp context."""
    from kfp.client import client

    monkeypatch.setattr(client.Client, "_LOCAL_KFP_CONTEXT", str(tmp_path / "kfp-context.json"))
    fake = FakeKfp()
    server, url = serve(fake)
    yield fake, url
    server.shutdown()


def submit_to(url: str, *flags: str) -> int:
    return submit.main(["--host", url, "--params", str(REPO_ROOT / "params.yaml"), *flags])


def test_standalone_run_as_pipeline_runner_with_one_key_of_a_section_changed(kfp_api, capsys):
    fake, url = kfp_api
    code = submit_to(
        url, "--pipeline", "llm", "--models-in", "workspace", "--workspace-size", "7Gi",
        "--arg", "finetune.max_steps=5", "--arg", "accelerator_count=4", "--arg", "cpu=16",
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    (run,) = fake.runs
    assert run["service_account"] == "pipeline-runner"
    sent = run["runtime_config"]["parameters"]
    in_file = load_project_params(REPO_ROOT / "params.yaml").finetune
    assert sent["finetune"] == in_file.model_dump(mode="json", exclude_none=True) | {"max_steps": 5}
    assert sent["accelerator_count"] == 4 and sent["cpu"] == "16"
    (version,) = fake.versions
    assert sent["pipeline_version"] == version["display_name"]
    assert b"7Gi" in version["package"]  # --workspace-size reached the builder
    assert [p["namespace"] for p in fake.pipelines] == [""]
    assert capsys.readouterr().out.strip().endswith(f"/#/runs/details/{run['run_id']}")


def test_a_second_submit_to_a_profile_namespace_adds_a_version_to_its_pipeline(
    kfp_api, tmp_path, capsys
):
    fake, url = kfp_api
    fake.multi_user = True
    fake.add(fake.pipelines, "pipeline", "mlops-methods-segmentation", namespace="")  # shared
    token = tmp_path / "token"
    token.write_text("secret-token\n")
    for _ in range(2):
        flags = ("--pipeline", "segmentation", "--namespace", "team-a", "--token-file", str(token))
        assert submit_to(url, *flags) == 0, capsys.readouterr().err
    (ours,) = [p for p in fake.pipelines if p["namespace"] == "team-a"]
    assert [v["pipeline_id"] for v in fake.versions] == [ours["pipeline_id"]] * 2
    assert {r["service_account"] for r in fake.runs} == {"default-editor"}
    assert [e["namespace"] for e in fake.experiments] == ["team-a"]
    api_calls = [r for r in fake.requests if r["path"] != "/apis/v2beta1/healthz"]
    assert {r["headers"].get("authorization") for r in api_calls} == {"Bearer secret-token"}


def test_a_cookie_is_an_identity_too(kfp_api, tmp_path, capsys):
    fake, url = kfp_api
    fake.multi_user = True
    cookie = tmp_path / "cookie"
    cookie.write_text("oauth2_proxy_kubeflow=abc")
    flags = ("--pipeline", "segmentation", "--namespace", "team-a", "--cookie-file", str(cookie))
    assert submit_to(url, *flags) == 0, capsys.readouterr().err
    assert fake.requests[-1]["headers"].get("cookie") == "oauth2_proxy_kubeflow=abc"


@pytest.mark.parametrize(
    ("multi_user", "flags", "message"),
    [
        (True, (), "multi-user: pass --namespace"),
        (False, ("--namespace", "team-a", "--token-file", "{token}"), "is standalone"),
        (True, ("--namespace", "team-a"), "needs an identity: --token-file or --cookie-file"),
        (False, ("--arg", "finetune.max_stepz=5"), "--arg finetune.max_stepz [finetune.max_stepz]"),
        (False, ("--arg", "profile=large"), "--arg profile [profile]"),
        (False, ("--arg", "acelerator_count=4"), "--arg acelerator_count: not a parameter"),
        (False, ("--arg", "accelerator_count=four"), "'four' is not a NUMBER_INTEGER"),
        (False, ("--arg", "pipeline_version=x"), "set by submit"),
    ],
)
def test_mistakes_fail_before_anything_is_uploaded(
    kfp_api, tmp_path, capsys, multi_user, flags, message
):
    fake, url = kfp_api
    fake.multi_user = multi_user
    token = tmp_path / "token"
    token.write_text("t")
    flags = tuple(flag.format(token=token) for flag in flags)
    assert submit_to(url, "--pipeline", "llm", *flags) == 2
    assert message in capsys.readouterr().err
    assert [r["path"] for r in fake.requests if r["method"] == "POST"] == []


def test_workspace_options_only_for_pipelines_with_a_workspace():
    args = submit.parse_args(
        ["--host", "h", "--pipeline", "reward", "--workspace-access-mode", "ReadWriteOnce"]
    )
    assert submit.pipeline_builder_options(args)["workspace_access_mode"] == "ReadWriteOnce"
    args = submit.parse_args(["--host", "h", "--pipeline", "segmentation", "--workspace-size", "1"])
    with pytest.raises(submit.SubmitError, match="--workspace-size: the segmentation pipeline"):
        submit.pipeline_builder_options(args)


def test_section_arguments_merge_key_by_key_and_are_validated():
    params = load_project_params(REPO_ROOT / "params.yaml")
    merged = submit.run_arguments(
        params, {"model.tiny": {"hidden_size": 64}, "finetune.lora.r": 4, "cpu": 2}
    )
    assert merged["model"]["tiny"] == params.model.tiny.model_dump() | {"hidden_size": 64}
    assert merged["finetune"]["lora"]["r"] == 4 and merged["cpu"] == 2
    assert merged["finetune"]["max_steps"] == params.finetune.max_steps
    with pytest.raises(ProjectError, match=r"--arg finetune \[finetune.lora.r\]"):
        submit.run_arguments(params, {"finetune": {"lora": {"r": "x"}}})
