"""A causal LM logged to MLflow the way users load it from the registry: greedy answers to bare
prompts, rendered as SFT rendered them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import mlflow
from transformers import GenerationConfig

from components.common.models import render_prompt

if TYPE_CHECKING:
    from mlflow.models.model import ModelInfo
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

# What the registered model needs at serving time; listing it skips MLflow's slow inference.
MODEL_REQUIREMENTS = ["torch==2.13.0", "transformers==5.23.0", "accelerate==1.15.0"]


def prompt_template(tokenizer: PreTrainedTokenizerBase, instruction: str = "{prompt}") -> str:
    """`render_prompt` of `instruction` (a frame around the user's `{prompt}`, e.g. a fixed
    conditioning line above it) as MLflow's `prompt_template`: a str.format string with one
    `{prompt}`."""
    marker = "\0prompt\0"
    rendered = render_prompt(tokenizer, instruction.replace("{prompt}", marker))
    return rendered.replace("{", "{{").replace("}", "}}").replace(marker, "{prompt}")


def log_answering_model(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    max_new_tokens: int,
    instruction: str = "{prompt}",
) -> ModelInfo:
    """Log the model as users load it. Both flavours decode greedily, up to `max_new_tokens`
    (the saved GenerationConfig). The pyfunc also renders a bare prompt the way SFT did and
    returns the answer only; `mlflow.transformers.load_model` gives the plain pipeline.
    `instruction` frames the user's prompt (see `prompt_template`)."""
    model.generation_config = GenerationConfig(
        do_sample=False,
        max_new_tokens=max_new_tokens,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return mlflow.transformers.log_model(
        transformers_model={"model": model, "tokenizer": tokenizer},
        name="model",
        task="text-generation",
        prompt_template=prompt_template(tokenizer, instruction),
        # SFT encoded prompts without special tokens (components.common.sft)
        model_config={"return_full_text": False, "add_special_tokens": False},
        pip_requirements=MODEL_REQUIREMENTS,
    )
