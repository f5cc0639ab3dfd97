"""pretrain's section."""

from __future__ import annotations

from pydantic import Field

from components.common.params import TrainerParams, step_schema


class PretrainParams(TrainerParams):
    """Next-token training of the tiny base model on the world corpus."""

    seed: int = 0
    max_steps: int = Field(400, gt=0)
    learning_rate: float = Field(3e-3, gt=0)
    block_size: int = Field(64, gt=0)


# what `python -m components.pretrain` reads from params.yaml
PretrainStep = step_schema("PretrainStep", pretrain=PretrainParams)
