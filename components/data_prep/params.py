"""data_prep's section: the synthetic LLM world or the user's SFT files."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from components.common.params import StrictModel, step_schema

SYNTHETIC_TASKS = ("reverse", "add", "recall", "fact_qa")


class DataPrepParams(StrictModel):
    seed: int = 0
    source: Literal["synthetic", "user"] = "synthetic"
    # tasks: the 4-task world; ilp_planted: the ILP planted-cause benchmark (data_prep/planted.py)
    synthetic: Literal["tasks", "ilp_planted"] = "tasks"
    # user data: JSONL of prompt/response records or chat `messages`
    user_train: str | None = None
    user_eval: str | None = None
    tasks: tuple[str, ...] = SYNTHETIC_TASKS
    train_per_task: dict[str, int] = {"reverse": 600, "add": 600, "recall": 150, "fact_qa": 400}
    eval_per_task: int = Field(50, gt=0)
    n_entities: int = Field(120, gt=0)
    n_recall_keys: int = Field(150, gt=0)
    corpus_repeats: int = Field(4, gt=0)
    # sequential training: the stage of each task (records carry it in `stage`)
    task_stage: dict[str, int] = {"recall": 0, "reverse": 1, "add": 2, "fact_qa": 2}
    tokenizer_vocab_size: int = Field(512, ge=300)
    max_prompt_chars: int = Field(512, gt=0)
    max_response_chars: int = Field(512, gt=0)

    @model_validator(mode="after")
    def _user_files_when_user_source(self) -> DataPrepParams:
        if self.source == "user" and not self.user_train:
            raise ValueError("source=user needs data_prep.user_train")
        return self


# what `python -m components.data_prep` reads from params.yaml
DataPrepStep = step_schema("DataPrepStep", data_prep=DataPrepParams)
