"""transformers.Trainer integration for EPI: clipping order, drift logging, checkpoint state.

Trainer clips gradients *before* ``optimizer.step()`` and fires ``on_pre_optimizer_step`` after
clipping (transformers 5.23, ``Trainer._run_epoch``), so no callback sees the raw gradient the EMA
needs. ``IsolationCallback`` therefore moves clipping into ``IsolatingOptimizer.step()``
(after ``accumulate``) and sets ``args.max_grad_norm = 0``; Trainer still logs the same pre-clip
``grad_norm``. Usage::

    opt = build_isolating_optimizer(model, IsolationConfig(), args=training_args)
    trainer = Trainer(model=model, args=training_args, train_dataset=ds, optimizers=(opt, None))
    attach_isolation(trainer)  # first in the callback list, so MLflow also sees the epi/ keys
    trainer.train(resume_from_checkpoint=...)
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from components.epi_finetune.engine import ParameterIsolation
from components.epi_finetune.optimizer import IsolatingOptimizer, build_isolating_optimizer

__all__ = [
    "EPI_STATE_NAME",
    "IsolationCallback",
    "attach_isolation",
    "build_isolating_optimizer",
    "find_isolating_optimizer",
    "load_isolation_state",
    "save_isolation_state",
]

logger = logging.getLogger(__name__)

EPI_STATE_NAME = "epi_state.pt"
EPI_HISTORY_NAME = "epi_history.json"
_LOGGED = ("tau", "frac_isolated", "jaccard_prev", "churn", "overlap_first", "released", "added")
_LOGGED += ("age_mean", "age_max")


def find_isolating_optimizer(optimizer: Any) -> IsolatingOptimizer | None:
    """Unwrap accelerate's ``AcceleratedOptimizer`` (``.optimizer``) down to the EPI wrapper."""
    while optimizer is not None and not isinstance(optimizer, IsolatingOptimizer):
        optimizer = getattr(optimizer, "optimizer", None)
    return optimizer


def save_isolation_state(engine: ParameterIsolation, checkpoint_dir: str | os.PathLike) -> Path:
    path = Path(checkpoint_dir) / EPI_STATE_NAME
    tmp = path.with_suffix(".tmp")
    torch.save(engine.state_dict(), tmp)
    tmp.replace(path)  # a crash mid-save leaves no half-written state
    return path


def load_isolation_state(checkpoint_dir: str | os.PathLike, engine: ParameterIsolation) -> bool:
    """Restore ``engine`` from ``<checkpoint_dir>/epi_state.pt``; False when there is none."""
    path = Path(checkpoint_dir) / EPI_STATE_NAME
    if not path.is_file():
        return False
    engine.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return True


class IsolationCallback(TrainerCallback):
    """Trainer side of EPI (the optimizer wrapper does the step itself).

    - on_train_begin: move clipping into the wrapper; on resume, load ``epi_state.pt`` from
      ``resume_from`` or ``<output_dir>/checkpoint-<global_step>`` (Trainer does not pass the path).
    - on_log: add the latest refresh's drift stats as ``epi/...`` scalars.
    - on_save: write ``epi_state.pt`` into the new checkpoint; on_train_end: ``epi_history.json``.
    """

    def __init__(
        self, optimizer: IsolatingOptimizer, resume_from: str | os.PathLike | None = None
    ) -> None:
        self.optimizer = optimizer
        self.engine = optimizer.engine
        self.resume_from = resume_from
        self._last_logged_refresh = 0

    @property
    def history(self) -> list[dict[str, Any]]:
        """One dict of drift stats per refresh, for plotting."""
        return self.engine.history

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if args.max_grad_norm and args.max_grad_norm > 0:
            if self.optimizer.max_grad_norm is None:
                self.optimizer.max_grad_norm = args.max_grad_norm
            logger.info(
                "EPI: clipping at %s inside the optimizer step", self.optimizer.max_grad_norm
            )
            args.max_grad_norm = 0.0
        if state.global_step > 0:
            ckpt = self.resume_from or Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if load_isolation_state(ckpt, self.engine):
                logger.info("EPI: restored isolation state from %s", ckpt)
            else:
                logger.warning(
                    "EPI: no %s in %s; isolation restarts from scratch", EPI_STATE_NAME, ckpt
                )
        self._last_logged_refresh = self.engine.n_refresh

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        if logs is None or not self.history or self.engine.n_refresh == self._last_logged_refresh:
            return
        self._last_logged_refresh = self.engine.n_refresh
        stats = self.history[-1]
        extra = {f"epi/{k}": float(stats[k]) for k in _LOGGED if stats.get(k) is not None}
        logs.update(extra)
        # Trainer appended its copy of `logs` to log_history before calling on_log.
        if state.log_history and state.log_history[-1].get("step") == state.global_step:
            state.log_history[-1].update(extra)

    def on_save(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if state.is_world_process_zero:
            ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            ckpt.mkdir(parents=True, exist_ok=True)
            save_isolation_state(self.engine, ckpt)

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if state.is_world_process_zero and args.output_dir:
            out = Path(args.output_dir)
            out.mkdir(parents=True, exist_ok=True)
            (out / EPI_HISTORY_NAME).write_text(json.dumps(self.history, indent=1))


def attach_isolation(
    trainer: Trainer, resume_from: str | os.PathLike | None = None
) -> IsolationCallback:
    """Add an ``IsolationCallback`` for ``trainer.optimizer`` at the front of its callbacks.

    First, so that reporting callbacks (MLflow, TensorBoard) that run later in ``on_log`` already
    see the ``epi/`` keys.
    """
    optimizer = find_isolating_optimizer(trainer.optimizer)
    if optimizer is None:
        raise ValueError(
            "trainer.optimizer is not an IsolatingOptimizer; pass optimizers=(opt, None)"
        )
    callback = IsolationCallback(optimizer, resume_from=resume_from)
    trainer.callback_handler.callbacks.insert(0, callback)
    return callback
