"""The fine-tuning methods of the EPI study, as plain configuration (one place, like PEFT's
registry): which isolation engine a method runs and whether it trains in stages."""

from __future__ import annotations

from components.epi_finetune.params import FinetuneParams, IsolationConfig

STAGED_METHODS = {"multistage", "cpi"}


def isolation_config(params: FinetuneParams) -> IsolationConfig | None:
    """The engine a method runs, or None for plain AdamW."""
    base = params.isolation
    match params.method:
        case "epi":
            return base
        case "epi_static":  # K = infinity: the mask computed once at the end of warm-up
            return base.model_copy(update={"mask_interval": None})
        case "random_mask":  # same p and K, uniform random entries
            return base.model_copy(update={"mask_source": "random"})
        case "inverse_epi":  # isolate the least important p% (sign check)
            return base.model_copy(update={"mask_source": "inverse"})
        case "cpi":  # cores set from outside at stage boundaries, never refreshed
            return base.model_copy(
                update={
                    "mask_source": "external",
                    "mask_interval": None,
                    "per_task_ema": False,
                    "stage_memory": False,
                }
            )
        case "full" | "multistage":
            if not params.track_drift:
                return None
            # observe only: the same importance statistics, nothing protected
            return base.model_copy(
                update={"protect_mode": "none", "per_task_ema": False, "stage_memory": False}
            )
    raise ValueError(f"unknown method {params.method!r}")


def trains_in_stages(params: FinetuneParams) -> bool:
    return params.schedule == "sequential" or params.method in STAGED_METHODS
