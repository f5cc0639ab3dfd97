"""evaluate's section: generation settings and the registry promotion rule."""

from __future__ import annotations

from pydantic import Field

from components.common.params import StrictModel, step_schema


class EvaluateParams(StrictModel):
    seed: int = 0
    batch_size: int = Field(64, gt=0)
    max_new_tokens: int = Field(16, gt=0)
    max_per_task: int | None = Field(None, gt=0)
    registered_model_name: str = "sft-model"
    promote_metric: str = "accuracy_mean"
    greater_is_better: bool = True


# what `python -m components.evaluate` reads from params.yaml
EvaluateStep = step_schema("EvaluateStep", evaluate=EvaluateParams)
