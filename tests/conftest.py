import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# The smallest settings that still run every step for real (used by DVC, KFP and step tests).
TINY_OVERRIDES = [
    # the whole 4-task world (params.yaml's demo trains two of its tasks)
    "data_prep.tasks=[reverse, add, recall, fact_qa]",
    "data_prep.train_per_task={reverse: 24, add: 24, recall: 12, fact_qa: 24}",
    "data_prep.eval_per_task=6",
    "data_prep.n_entities=16",
    "data_prep.n_recall_keys=12",
    "data_prep.corpus_repeats=1",
    "data_prep.tokenizer_vocab_size=320",
    "model.tiny={hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, "
    "num_attention_heads: 2, max_position_embeddings: 128}",
    "pretrain.max_steps=4",
    "pretrain.batch_size=8",
    "pretrain.logging_steps=2",
    "finetune.max_steps=4",
    "finetune.batch_size=8",
    "finetune.logging_steps=2",
    "finetune.save_steps=2",
    "evaluate.max_new_tokens=4",
]


@pytest.fixture
def mlflow_uri(tmp_path, monkeypatch) -> str:
    """A private SQLite MLflow store (with its registry) for one test."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def copy_repo(destination: Path) -> Path:
    """The tracked (and untracked, not ignored) files of this checkout, as a fresh git repo."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO_ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        source = REPO_ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    for command in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "commit", "-q", "-m", "copy"],
    ):
        subprocess.run(command, cwd=destination, check=True, env=env)
    return destination


def venv_env(**extra: str) -> dict[str, str]:
    """Make `python` in dvc.yaml's commands the interpreter running the tests."""
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", **extra}


def dvc(repo: Path, *args: str) -> subprocess.CompletedProcess:
    """`dvc ARGS` in `repo`, with the repo's own SQLite MLflow store; output captured."""
    env = venv_env(MLFLOW_TRACKING_URI=f"sqlite:///{repo / 'mlflow.db'}")
    command = [sys.executable, "-m", "dvc", *args]
    return subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True)


def run_torchrun(args: list[str], cwd: Path, env: dict[str, str], timeout: int = 240):
    """`torchrun --standalone --nproc_per_node=2 ARGS` on CPU (gloo over loopback), one thread per
    rank, no stdin (nothing here reads it), output in files (ranks live in their own sessions and
    could hold pipes open). On a timeout torchrun gets SIGTERM, which it forwards to the ranks,
    then SIGKILL."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    env = {**env, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(
            [*command, *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
            raise
        finally:
            out.seek(0)
            err.seek(0)
        return subprocess.CompletedProcess(process.args, process.returncode, out.read(), err.read())
