"""What a user reads during `dvc repro`: two cheap stages' CLIs with stderr captured, as in a log
file (not a terminal), on a fresh MLflow store."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT, TINY_OVERRIDES, venv_env

pytestmark = pytest.mark.integration

# lines nobody can act on (issue 14); a real warning of ours would still show
NOISE = (
    "UserWarning",
    "INFO mlflow.store",
    "Creating initial MLflow database tables",
    "Created temporary directory",
    "it/s]",  # a progress bar redrawn into the log
    "s/it]",
)


def run_step(module: str, *args: str, cwd) -> str:
    overrides = [arg for o in TINY_OVERRIDES for arg in ("--set", o)]
    result = subprocess.run(
        [sys.executable, "-m", module, "--params", str(REPO_ROOT / "params.yaml"), *overrides]
        + list(args),
        cwd=cwd,
        env=venv_env(
            MLFLOW_TRACKING_URI=f"sqlite:///{cwd / 'mlflow.db'}", PYTHONPATH=str(REPO_ROOT)
        ),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


def test_data_prep_and_pretrain_log_nothing_a_user_cannot_act_on(tmp_path):
    logs = run_step(
        "components.data_prep", "--out", "data", "--reports", "reports/data_prep", cwd=tmp_path
    )
    logs += run_step(
        "components.pretrain",
        *("--data", "data", "--out", "base", "--reports", "reports/pretrain"),
        cwd=tmp_path,
    )

    assert (tmp_path / "mlflow.db").is_file()  # created by the first step, silently
    noisy = [line for line in logs.splitlines() if any(n in line for n in NOISE)]
    assert not noisy, "\n".join(noisy)
    assert "'loss'" in logs  # the Trainer's logging lines stand in for the progress bar
