"""Every arm of RLHB's comparison from one shared start (`Setup`): the same logs, the same SFT
policy, the same warmed-up discriminator. The train step and the benchmark both build on it.

- `rlhb_arm`: the adversarial loop (D's reward, bootstrapping) from a copy of the SFT policy;
  `no_bootstrap` is the same with rho = 0; other rho and n are the same with those values;
- `no_conditioning`: its own SFT without the behaviour text, then `rlhb_arm` with conditioning off
  (D still reads the target behaviour);
- `fixed_arm`: RL against a reward learned once from the logs (RLHBC's classifier, pairwise RLHF's
  reward model), prompts always conditioned on b*."""

from __future__ import annotations

import copy
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from components.common.io import ProjectError, read_json, read_jsonl
from components.common.params import ModelParams, Profile
from components.rlhb import adversarial as adv
from components.rlhb import baselines
from components.rlhb import behaviour as bh
from components.rlhb.params import RlhbDataParams, RlhbParams
from components.rlhb.policy import generator_prompt
from components.rlhb.scorers import build_scorer

log = logging.getLogger(__name__)
HELD_OUT_SHARE = 0.1
SHAPING_METRICS = {"views", "clicks", "likes", "dislikes"}


def b_star_text(params: RlhbParams, binning: dict[str, list[float]]) -> str:
    """b* over the logs' metrics (a metric b* does not name: its top level)."""
    bins = len(next(iter(binning.values()))) - 1
    return bh.behaviour_text({m: params.b_star.get(m, bins) for m in binning}, bins)


def sft_records(logs: list[dict], conditioning: bool) -> list[dict[str, Any]]:
    return [
        {
            "prompt": generator_prompt(r["query"], r["behaviour_text"] if conditioning else None),
            "response": r["response"],
            "task": "rlhb",
        }
        for r in logs
    ]


def triplet(record: dict) -> adv.Triplet:
    return adv.Triplet(record["query"], record["response"], record["behaviour_text"])


def hidden_utility_monitor(data_dir: Path) -> Callable[[list[str], list[str]], float] | None:
    """The simulator's mean true score of (query, response) lists; None for the user's logs."""
    from components.rlhb import simulator

    if not (data_dir / "world.json").is_file():
        return None
    world = RlhbDataParams.model_validate(read_json(data_dir / "world.json"))
    topic_of = {q["query"]: q["topic"] for q in simulator.queries(world)}

    def monitor(queries: list[str], responses: list[str]) -> float:
        scores = [
            simulator.true_score(topic_of[q], r, world)
            for q, r in zip(queries, responses, strict=True)
        ]
        return sum(scores) / len(scores)

    return monitor


def base_generator(
    params: RlhbParams, profile: Profile, model_params: ModelParams, logs: list[dict]
) -> tuple[torch.nn.Module, Any]:
    """The tiny profile's Llama and word-level tokenizer built from the logs (every word of the
    world is one token), or the pretrained base (with LoRA when `rlhb.lora.enabled`)."""
    from components.common.models import (
        base_model_source,
        build_tiny_model,
        load_causal_lm,
        with_lora,
    )
    from components.common.tokenizer import train_word_tokenizer

    torch.manual_seed(params.seed)
    if profile == "tiny":
        texts = [f"{r['behaviour_text']}\nQuery: {r['query']}\n{r['response']}" for r in logs]
        tokenizer = train_word_tokenizer(texts)
        return build_tiny_model(params.generator, tokenizer), tokenizer
    model, tokenizer = load_causal_lm(base_model_source(profile, model_params))
    return (with_lora(model, params.lora) if params.lora.enabled else model), tokenizer


def sft(model, tokenizer, records, params: RlhbParams, name: str, work_dir: Path) -> dict:
    """Behaviour-conditioned (or plain) SFT with transformers.Trainer, in a nested MLflow run."""
    import mlflow
    from transformers import Trainer

    from components.common.sft import SFTDataset, sft_collator
    from components.common.training import save_loss_curve, training_arguments

    args = training_arguments(
        work_dir / "checkpoints" / name,
        max_steps=params.sft_steps,
        per_device_train_batch_size=params.sft_batch_size,
        learning_rate=params.sft_learning_rate,
        warmup_steps=int(0.05 * params.sft_steps),
        logging_steps=max(1, params.sft_steps // 10),
        save_strategy="no",
        seed=params.seed,
    )
    with mlflow.start_run(run_name=name, nested=True):
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=SFTDataset(records, tokenizer, params.scorer.max_length),
            data_collator=sft_collator(tokenizer),
        )
        result = trainer.train()
        summary = save_loss_curve(trainer, work_dir / name, f"{name} loss")
    return {
        f"{name}.train_loss": result.training_loss,
        **{f"{name}.{k}": v for k, v in summary.items()},
    }


@dataclass
class Setup:
    params: RlhbParams
    profile: Profile
    model_params: ModelParams
    data_dir: Path
    work_dir: Path
    pool: list[dict]  # D_on and the SFT data
    held_out: list[dict]  # D's held-out accuracy only
    binning: dict[str, list[float]]
    b_star: str
    sft_model: torch.nn.Module
    tokenizer: Any
    monitor: Callable[[list[str], list[str]], float] | None
    discriminator: dict[str, torch.Tensor] = field(default_factory=dict)  # warmed-up weights
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def queries(self) -> list[str]:
        return sorted({r["query"] for r in self.pool})

    @property
    def behaviours(self) -> list[str]:
        return [r["behaviour_text"] for r in self.pool]


def prepare(
    params: RlhbParams, profile: Profile, model_params: ModelParams, data_dir: Path, work_dir: Path
) -> Setup:
    """Split the logs 90/10, SFT the conditioned generator, warm D up (spec step 0)."""
    logs = read_jsonl(data_dir / "logs.jsonl")
    # the metrics in the order the behaviour texts state them (binning.json's keys are sorted)
    binning = {m: read_json(data_dir / "binning.json")[m] for m in logs[0]["levels"]}
    order = random.Random(params.seed).sample(range(len(logs)), len(logs))
    cut = max(1, int(HELD_OUT_SHARE * len(logs)))
    held_out, pool = [logs[i] for i in order[:cut]], [logs[i] for i in order[cut:]]
    model, tokenizer = base_generator(params, profile, model_params, pool)
    metrics = sft(model, tokenizer, sft_records(pool, True), params, "sft", work_dir)
    setup = Setup(
        params, profile, model_params, data_dir, work_dir, pool, held_out, binning,
        b_star_text(params, binning), model, tokenizer, hidden_utility_monitor(data_dir),
        metrics=metrics,
    )  # fmt: skip
    reward = discriminator(setup, params)
    losses = reward.warm_up()
    setup.discriminator = copy.deepcopy(reward.scorer.state_dict())
    setup.metrics |= {"d_warmup.loss": losses[-1], "d_warmup.accuracy": reward.held_out_accuracy()}
    log.info("D warm-up: %s", {k: round(v, 3) for k, v in setup.metrics.items() if "d_" in k})
    return setup


def discriminator(setup: Setup, params: RlhbParams) -> adv.DiscriminatorReward:
    """A D on the setup's pools: fresh, or with the warmed-up weights once there are some."""
    torch.manual_seed(params.seed)
    scorer = build_scorer(setup.tokenizer, params.scorer, 1)
    if setup.discriminator:
        scorer.load_state_dict(setup.discriminator)
    return adv.DiscriminatorReward(
        scorer,
        setup.tokenizer,
        [triplet(r) for r in setup.pool],
        [triplet(r) for r in setup.held_out],
        params,
        random.Random(params.seed),
    )


def rlhb_arm(
    setup: Setup,
    name: str,
    params: RlhbParams,
    start: torch.nn.Module | None = None,
    conditioning: bool = True,
) -> tuple[torch.nn.Module, list[dict[str, float]]]:
    model = copy.deepcopy(setup.sft_model if start is None else start)
    history = adv.train_rl(
        model, setup.tokenizer, discriminator(setup, params), setup.queries, setup.behaviours,
        setup.b_star, params, conditioning, params.target_b_star_share, setup.monitor, name,
    )  # fmt: skip
    return model, history


def no_conditioning_arm(setup: Setup, params: RlhbParams) -> tuple[torch.nn.Module, list[dict]]:
    if setup.profile == "tiny":  # the conditioned generator's word ids
        from components.common.models import build_tiny_model

        torch.manual_seed(params.seed)
        plain = build_tiny_model(params.generator, setup.tokenizer)
    else:
        plain, _ = base_generator(params, setup.profile, setup.model_params, setup.pool)
    records = sft_records(setup.pool, False)
    setup.metrics |= sft(plain, setup.tokenizer, records, params, "sft_plain", setup.work_dir)
    return rlhb_arm(setup, "no_conditioning", params, plain, conditioning=False)


def fixed_arm(setup: Setup, name: str, params: RlhbParams) -> tuple[torch.nn.Module, list[dict]]:
    if name == "rlhbc":
        if not set(setup.binning) >= SHAPING_METRICS:
            raise ProjectError(
                "rlhbc's reward shaping needs views, clicks, likes and dislikes",
                field="rlhb_data.metrics",
            )
        reward_of, _ = baselines.behaviour_classifier(
            setup.tokenizer, setup.pool, setup.binning, params
        )
    else:
        path = setup.data_dir / "preferences.jsonl"
        pairs = read_jsonl(path)
        if not pairs:
            raise ProjectError("no behaviour-derived preference pairs", file=path)
        reward_of, _ = baselines.pairwise_reward_model(setup.tokenizer, pairs, params)
    reward = adv.FixedReward(baselines.normalised(reward_of, [triplet(r) for r in setup.pool]))
    model = copy.deepcopy(setup.sft_model)
    history = adv.train_rl(
        model, setup.tokenizer, reward, setup.queries, setup.behaviours, setup.b_star, params,
        True, 1.0, setup.monitor, name,
    )  # fmt: skip
    return model, history


def train_arm(setup: Setup, arm: str) -> tuple[torch.nn.Module, list[dict[str, float]], bool]:
    """(generator, RL history, conditioned?) of one of the step's arms."""
    params = setup.params
    if arm == "rlhb":
        return (*rlhb_arm(setup, arm, params), True)
    if arm == "no_bootstrap":
        return (*rlhb_arm(setup, arm, params.model_copy(update={"bootstrap_ratio": 0.0})), True)
    if arm == "no_conditioning":
        return (*no_conditioning_arm(setup, params), False)
    return (*fixed_arm(setup, arm, params), True)
