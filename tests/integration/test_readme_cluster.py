"""Every command of the README's "Run on a cluster" is exercised offline: overlays render, `make`
targets exist, `pipelines.submit` commands run against a fake KFP API (tests/fake_kfp_api.py).
Commands that need a live cluster or Docker are listed here by name, so a new one fails until it
is classified."""

import re
import shlex
import subprocess

import pytest

from pipelines import submit
from tests.conftest import REPO_ROOT
from tests.integration.test_build_artifacts import venv_tool
from tests.integration.test_pipelines_submit import kfp_api  # noqa: F401 (a fixture)

pytestmark = pytest.mark.integration

NEEDS_A_CLUSTER = (
    "port-forward",
    "create token",
    "docker push",
    "export ",
    "make images",
    "kubectl apply -f",
    "make cluster-smoke",
)
# run by tests/integration/test_serving.py on a local registry
SERVING = ("make serve", "mlflow models serve")


def section_commands() -> list[str]:
    """The shell commands of the section's bash blocks, continuations joined, comments dropped."""
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## Run on a cluster\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    joined = "\n".join(blocks).replace("\\\n", " ")
    lines = (line.split(" # ", 1)[0].strip() for line in joined.splitlines())
    return [line for line in lines if line]


def test_the_section_has_both_modes():
    commands = section_commands()
    applied = {c.split()[-1] for c in commands if c.startswith("kubectl apply -k")}
    assert applied == {"k8s/overlays/standalone", "k8s/overlays/profile"}
    submits = [c for c in commands if "pipelines.submit" in c]
    assert len(submits) == 2 and sum("--namespace" in c for c in submits) == 1


def test_every_overlay_it_applies_renders(tmp_path):
    kubectl = venv_tool("kubectl")
    for command in section_commands():
        if command.startswith("kubectl apply -k"):
            overlay = command.split()[-1]
            result = subprocess.run(
                [kubectl, "kustomize", str(REPO_ROOT / overlay)], capture_output=True, text=True
            )
            # secrets/*.env are written by `make secrets`; only their absence may fail here
            assert result.returncode == 0 or ".env" in result.stderr, result.stderr


def test_every_make_target_it_names_exists():
    makefile = (REPO_ROOT / "Makefile").read_text()
    for command in section_commands():
        for part in command.split("&&"):
            words = part.split()
            if words[:1] == ["make"]:
                assert re.search(rf"^{words[1]}:", makefile, flags=re.M), words[1]


def test_every_submit_command_runs_against_a_fake_kfp(kfp_api, tmp_path, capsys):  # noqa: F811
    fake, url = kfp_api
    token = tmp_path / "token"
    token.write_text("t")
    for command in section_commands():
        if "pipelines.submit" not in command:
            assert command.startswith(("kubectl apply -k", "make secrets")) or any(
                known in command for known in NEEDS_A_CLUSTER + SERVING
            ), f"classify this README command: {command}"
            continue
        argv = shlex.split(command)[3:]  # after `.venv/bin/python -m pipelines.submit`
        argv[argv.index("--host") + 1] = url
        if "--token-file" in argv:
            argv[argv.index("--token-file") + 1] = str(token)
        fake.multi_user = "--namespace" in argv
        argv += ["--params", str(REPO_ROOT / "params.yaml")]
        assert submit.main(argv) == 0, capsys.readouterr().err
    assert len(fake.runs) == 2
