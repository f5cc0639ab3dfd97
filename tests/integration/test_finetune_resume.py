"""A retried fine-tuning task (a preempted spot node) resumes from the last checkpoint that its
previous attempt left in the run's workspace, instead of starting over."""

import logging

import pytest
from transformers import TrainerCallback

from components.data_prep.step import run as prepare
from components.epi_finetune import step
from components.pretrain.step import run as pretrain
from pipelines.params import load_project_params
from tests.conftest import REPO_ROOT, TINY_OVERRIDES

pytestmark = pytest.mark.integration


class Preempted(Exception):
    pass


class PreemptAt(TrainerCallback):
    """Kills the run after `step`, as a node lost mid-training would."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise Preempted(f"preempted after step {self.step}")


def test_a_retried_finetune_resumes_from_its_checkpoint_in_the_workspace(
    tmp_path, monkeypatch, caplog
):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    params = load_project_params(REPO_ROOT / "params.yaml", TINY_OVERRIDES)
    prepare(params.data_prep, "tiny", tmp_path / "data", tmp_path / "reports")
    pretrain(
        params.pretrain, params.model, "tiny", tmp_path / "data", tmp_path / "base", tmp_path / "r"
    )
    finetune = params.finetune.model_validate(
        params.finetune.model_dump() | {"max_steps": 4, "save_steps": 2, "eval_every": 4}
    )
    workspace_checkpoints = tmp_path / "workspace" / "checkpoints"

    def attempt(out: str) -> dict[str, float]:
        return step.run(
            finetune,
            "tiny",
            tmp_path / "data",
            tmp_path / "base",
            tmp_path / out / "model",
            tmp_path / out / "reports",
            checkpoint_root=workspace_checkpoints,
        )

    add_monitors = step.add_monitors

    def preempted_monitors(trainer, *args):
        trainer.add_callback(PreemptAt(3))  # after the checkpoint of step 2
        return add_monitors(trainer, *args)

    monkeypatch.setattr(step, "add_monitors", preempted_monitors)
    with pytest.raises(Preempted):
        attempt("first")
    (saved,) = workspace_checkpoints.glob("finetune/*/checkpoint-2")

    monkeypatch.setattr(step, "add_monitors", add_monitors)
    with caplog.at_level(logging.INFO, logger=step.__name__):
        metrics = attempt("retry")
    assert f"resuming from {saved}" in caplog.text
    assert (tmp_path / "retry" / "model" / "config.json").is_file()
    assert (saved.parent / "checkpoint-4").is_dir()  # it went on to the end
    assert metrics["train_loss"] > 0
