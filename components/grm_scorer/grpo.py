"""E-GRM stage 2: GRPO of the SFT policy with TRL's GRPOTrainer and the scorer's pairwise reward.

Rewards of one prompt's group of G completions r_1..r_G (grpo.reward):
- pairwise (the spec's practical reading [I]): s_i = S_phi(x, r_i); every pair with s_i > s_j is
  one (r+, r-) = (r_i, r_j) with R_pair = s_i - s_j + beta * 1[answer(r_i) correct];
  a completion's reward is the mean of +R_pair over the pairs it wins and -R_pair over those it
  loses. A group whose scores are all equal has no pair: each completion gets its own
  correctness bonus beta * 1[correct] only.
- vanilla: 1[answer(r_i) correct], the vanilla-GRPO ablation.
GRPOTrainer then normalises the rewards within each group (its advantages).

Prompts are the CoT route's (question + cot_suffix in the policy's format): the scorer was trained
on, and judges, step-by-step paths. torch, TRL and datasets are imported inside the functions, so
grpo.steps = 0 loads none of them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from components.grm_scorer.consensus import extract_answer
from components.grm_scorer.params import GrmParams


def pairwise_rewards(scores: Sequence[float], correct: Sequence[bool], beta: float) -> list[float]:
    """Per-completion rewards of one group (formula in the module docstring)."""
    if len(scores) != len(correct):
        raise ValueError("one correctness flag per score")
    totals, counts = [0.0] * len(scores), [0] * len(scores)
    for i, s_i in enumerate(scores):
        for j, s_j in enumerate(scores):
            if s_i > s_j:  # r+ = r_i, r- = r_j
                r_pair = s_i - s_j + beta * float(correct[i])
                totals[i] += r_pair
                totals[j] -= r_pair
                counts[i] += 1
                counts[j] += 1
    if not any(counts):  # all scores equal: the correctness bonus only
        return [beta * float(c) for c in correct]
    return [total / count for total, count in zip(totals, counts, strict=True)]


def is_correct(completions: Sequence[str], golds: Sequence[str], answer_format: str) -> list[bool]:
    return [
        extract_answer(text, answer_format) == str(gold).lower()  # type: ignore[arg-type]
        for text, gold in zip(completions, golds, strict=True)
    ]


def reward_function(params: GrmParams, scorer: Any | None) -> Callable[..., list[float]]:
    """The reward GRPOTrainer calls on a batch of prompt groups (G consecutive completions per
    prompt, TRL's order); `question` and `gold` are the dataset's columns."""
    grpo, group = params.grpo, params.grpo.num_generations

    def reward(
        completions: list[str],
        question: list[str],
        gold: list[str],
        log_metric: Callable[[str, float], None] | None = None,
        **_: Any,
    ) -> list[float]:
        correct = is_correct(completions, gold, params.gating.answer_format)
        if log_metric is not None:  # the arms' common yardstick: share of correct GRPO samples
            log_metric("correct", sum(correct) / len(correct))
        if grpo.reward == "vanilla":
            return [float(c) for c in correct]
        scores, _ = scorer.score(question, [c.strip() for c in completions])
        rewards: list[float] = []
        for lo in range(0, len(completions), group):
            if len(set(question[lo : lo + group])) != 1:
                raise ValueError("GRPOTrainer's batch is not in groups of num_generations")
            rewards += pairwise_rewards(
                scores[lo : lo + group].tolist(), correct[lo : lo + group], grpo.beta
            )
        return rewards

    reward.__name__ = f"{grpo.reward}_reward"  # TRL logs rewards/<name>/mean
    return reward


def grpo_config(params: GrmParams, output_dir: Path) -> Any:
    import torch
    from trl import GRPOConfig

    grpo = params.grpo
    return GRPOConfig(
        output_dir=str(output_dir),
        max_steps=grpo.steps,
        per_device_train_batch_size=grpo.prompts_per_step * grpo.num_generations,
        num_generations=grpo.num_generations,
        learning_rate=grpo.learning_rate,
        lr_scheduler_type="constant",
        beta=grpo.kl_coef,
        epsilon=grpo.epsilon,
        loss_type=grpo.loss_type,
        temperature=grpo.temperature,
        top_p=params.gating.cot_top_p,
        max_completion_length=params.gating.max_new_tokens_cot,
        logging_steps=grpo.logging_steps,
        seed=params.seed,
        report_to=["mlflow"],  # into the step's active MLflow run
        save_strategy="no",
        # GRPOConfig defaults to bf16, which a CPU refuses unless told it is one; a GPU keeps it
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
        disable_tqdm=True,
    )


def train(
    policy_dir: Path,
    prompts: list[dict[str, str]],
    scorer: Any | None,
    params: GrmParams,
    work_dir: Path,
) -> tuple[Any, Any, list[dict[str, float]]]:
    """GRPO of the policy saved in `policy_dir` on `prompts` ({prompt, question, gold});
    returns the trained model, its tokenizer and TRL's log history."""
    from datasets import Dataset
    from trl import GRPOTrainer

    from components.common.models import load_tokenizer, render_prompt

    tokenizer = load_tokenizer(policy_dir)
    # the policy's own prompt format (a chat template for instruct models, else `prompt\n`)
    rendered = [{**p, "prompt": render_prompt(tokenizer, p["prompt"])} for p in prompts]
    # the model as a path: TRL builds the frozen KL reference from the same directory (a model
    # built from a config has no path to rebuild it from)
    trainer = GRPOTrainer(
        model=str(policy_dir),
        reward_funcs=reward_function(params, scorer),
        args=grpo_config(params, work_dir),
        train_dataset=Dataset.from_list(rendered),
        processing_class=tokenizer,
    )
    trainer.train()
    return trainer.model, tokenizer, trainer.state.log_history
