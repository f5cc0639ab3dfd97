"""The isolating optimizer: any torch optimizer wrapped so its step leaves the isolated entries
fixed (or, per ``protect_mode``, with a zeroed gradient or a scaled-down update)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from components.epi_finetune.engine import ParameterIsolation
from components.epi_finetune.index_sets import put_at
from components.epi_finetune.params import IsolationConfig


class IsolatingOptimizer(torch.optim.Optimizer):
    """Wraps any torch optimizer so ``step()`` runs the EPI step around it.

    ``step()``: accumulate the EMA from raw grads -> clip (``max_grad_norm``) -> maybe refresh M ->
    protect -> inner step -> restore. Clip here, not before ``step()``, so the EMA sees unclipped
    gradients. ``super().__init__`` is deliberately not called: param_groups and state are the inner
    optimizer's (as in accelerate's ``AcceleratedOptimizer``), so LR schedulers, Trainer
    checkpoints and ``load_state_dict`` all act on the inner optimizer.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        engine: ParameterIsolation,
        max_grad_norm: float | None = None,
        accumulate: bool = True,
    ) -> None:
        self.optimizer = optimizer
        self.engine = engine
        self.max_grad_norm = max_grad_norm
        self.accumulate = accumulate  # False if the caller feeds engine.accumulate() itself
        self.last_grad_norm: Tensor | None = None
        self.last_refresh: dict[str, Any] | None = None
        self._protected: list[tuple[nn.Parameter, Tensor]] = []  # during a step only
        self._saved: list[Tensor] = []

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.optimizer.param_groups

    @param_groups.setter
    def param_groups(self, value: list[dict[str, Any]]) -> None:
        self.optimizer.param_groups = value

    @property
    def state(self) -> Any:
        return self.optimizer.state

    @state.setter
    def state(self, value: Any) -> None:
        self.optimizer.state = value

    @property
    def defaults(self) -> dict[str, Any]:
        return self.optimizer.defaults

    @defaults.setter
    def defaults(self, value: dict[str, Any]) -> None:
        self.optimizer.defaults = value

    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if self.accumulate:
            self.engine.accumulate()
        if self.max_grad_norm:
            params = [p for g in self.param_groups for p in g["params"] if p.grad is not None]
            self.last_grad_norm = nn.utils.clip_grad_norm_(params, self.max_grad_norm)
        stats = self.engine.maybe_refresh(optimizer=self.optimizer)
        if stats is not None:
            self.last_refresh = stats
        self.protect_before_step()
        self.optimizer.step()
        self.restore_after_step()
        return loss

    @torch.no_grad()
    def protect_before_step(self) -> None:
        """final_delta/lr_scale: save the p*N isolated values; grad_zero: zero their gradient;
        none: nothing (observe only)."""
        mode = self.engine.config.protect_mode
        self._protected, self._saved = [], []
        if mode == "none":
            return
        self._protected = self.engine.isolated_entries()
        if mode == "grad_zero":
            for p, i in self._protected:
                if p.grad is not None:
                    put_at(p.grad, i, p.grad.new_zeros(()).expand(i.numel()))
        else:
            self._saved = [torch.take(p, i) for p, i in self._protected]

    @torch.no_grad()
    def restore_after_step(self) -> None:
        """final_delta: write the saved values back bit-identically (cancels AdamW's whole delta,
        weight decay included); lr_scale: keep only gamma times the delta on isolated entries."""
        if self._saved:
            if self.engine.config.protect_mode == "lr_scale":
                gamma = self.engine.config.lr_scale_gamma
                for (p, i), old in zip(self._protected, self._saved, strict=True):
                    old.add_(torch.take(p, i).sub_(old), alpha=gamma)
            for (p, i), old in zip(self._protected, self._saved, strict=True):
                put_at(p, i, old)
        self._protected, self._saved = [], []

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return self.optimizer.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state_dict)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        self.optimizer.add_param_group(param_group)

    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return f"IsolatingOptimizer({self.optimizer!r}, p={self.engine.config.iso_ratio})"


def build_isolating_optimizer(
    model: nn.Module,
    config: IsolationConfig | None = None,
    args: Any = None,
    *,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    betas: tuple[float, float] = (0.9, 0.999),
    adam_eps: float = 1e-8,
    max_grad_norm: float | None = None,
) -> IsolatingOptimizer:
    """AdamW (no decay for <2-D tensors: biases, norms) wrapped with EPI over ``model``.

    ``args``: anything with TrainingArguments' fields (learning_rate, weight_decay, adam_beta1,
    adam_beta2, adam_epsilon, max_grad_norm); they override the keyword defaults.
    """
    if args is not None:
        lr, weight_decay = args.learning_rate, args.weight_decay
        betas, adam_eps = (args.adam_beta1, args.adam_beta2), args.adam_epsilon
        max_grad_norm = args.max_grad_norm or None
    trainable = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in trainable if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in trainable if p.ndim < 2], "weight_decay": 0.0},
    ]
    inner = torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, betas=betas, eps=adam_eps)
    engine = ParameterIsolation(model, config)
    return IsolatingOptimizer(inner, engine, max_grad_norm=max_grad_norm)
