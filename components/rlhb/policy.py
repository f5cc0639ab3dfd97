"""The generator's side of RL: behaviour-conditioned prompts, sampled rollouts with their per-token
log-probabilities, and the critic-free RLOO update (spec: "PPO with a value head or, simpler on
CPU, RLOO/REINFORCE with n = 4").

RLOO (Ahmadian et al. 2024, TRL's RLOOTrainer): each prompt's n rollouts are scored, the return of
rollout j is R_j = clip(score_j) - beta * sum_t (log pi(y_t) - log pi_ref(y_t)), its advantage the
leave-one-out A_j = R_j - mean_{k != j} R_k (with n = 1, the batch mean is the baseline), and the
loss is -mean_j A_j * sum_t log pi(y_t)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from components.common.models import render_prompt


def generator_prompt(query: str, behaviour: str | None) -> str:
    """The instruction: the behaviour text (when conditioning) above the query."""
    return query if behaviour is None else f"{behaviour}\nQuery: {query}"


@dataclass
class Rollouts:
    prompt_ids: torch.Tensor  # (B, P) left-padded, one row per rollout
    completion_ids: torch.Tensor  # (B, C) right-padded with pad after EOS
    completion_mask: torch.Tensor  # (B, C) 1 on generated tokens up to and including EOS
    texts: list[str]


@torch.no_grad()
def sample(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[str],
    rollouts: int,
    max_new_tokens: int,
    temperature: float,
) -> Rollouts:
    """`rollouts` samples per prompt (rows prompt-major: prompt i's samples at i*n .. i*n+n-1)."""
    padding_side, was_training = tokenizer.padding_side, model.training
    tokenizer.padding_side = "left"
    model.eval()
    batch = tokenizer(
        [render_prompt(tokenizer, p) for p in prompts],
        return_tensors="pt",
        padding=True,
        add_special_tokens=False,
    ).to(model.device)
    output = model.generate(
        **batch,
        do_sample=True,
        temperature=temperature,
        top_k=0,
        top_p=1.0,
        max_new_tokens=max_new_tokens,
        num_return_sequences=rollouts,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    tokenizer.padding_side = padding_side
    model.train(was_training)
    width = batch["input_ids"].shape[1]
    completion = output[:, width:]
    mask = completion_mask(completion, tokenizer.eos_token_id)
    completion = completion.masked_fill(mask == 0, tokenizer.pad_token_id)
    texts = tokenizer.batch_decode(completion, skip_special_tokens=True)
    return Rollouts(
        prompt_ids=output[:, :width],
        completion_ids=completion,
        completion_mask=mask,
        texts=[t.strip().split("\n")[0].strip() for t in texts],
    )


def completion_mask(completion: torch.Tensor, eos_token_id: int) -> torch.Tensor:
    """1 on every token up to and including the first EOS (all tokens when there is none)."""
    is_eos = completion == eos_token_id
    after_eos = (is_eos.cumsum(dim=1) - is_eos.long()) > 0
    return (~after_eos).long()


def token_logprobs(model: torch.nn.Module, rollouts: Rollouts, pad_token_id: int) -> torch.Tensor:
    """(B, C) log pi(y_t | prompt, y_<t) of each completion token (0 where masked)."""
    input_ids = torch.cat([rollouts.prompt_ids, rollouts.completion_ids], dim=1)
    prompt_mask = (rollouts.prompt_ids != pad_token_id).long()
    attention_mask = torch.cat([prompt_mask, rollouts.completion_mask], dim=1)
    position_ids = (attention_mask.cumsum(dim=1) - 1).clamp(min=0)
    logits = model(
        input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids
    ).logits
    width = rollouts.prompt_ids.shape[1]
    logits = logits[:, width - 1 : -1].float()
    picked = torch.gather(logits.log_softmax(-1), 2, rollouts.completion_ids.unsqueeze(-1))
    return picked.squeeze(-1) * rollouts.completion_mask


def rloo_advantages(returns: torch.Tensor) -> torch.Tensor:
    """`returns` (prompts, n) -> leave-one-out advantages; with n = 1, return minus batch mean."""
    n = returns.shape[1]
    if n == 1:
        return returns - returns.mean()
    others = (returns.sum(dim=1, keepdim=True) - returns) / (n - 1)
    return returns - others


def rloo_loss(logprobs: torch.Tensor, advantages: torch.Tensor) -> torch.Tensor:
    """-mean over rollouts of A_j * sum_t log pi(y_t); `advantages` carry no gradient."""
    return -(advantages.detach().reshape(-1) * logprobs.sum(dim=1)).mean()


def returns(
    scores: torch.Tensor,
    logprobs: torch.Tensor,
    ref_logprobs: torch.Tensor,
    kl_coef: float,
    clip: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(R_j, the per-rollout KL estimate sum_t log pi - log pi_ref), both without gradient."""
    kl = (logprobs.detach() - ref_logprobs).sum(dim=1)
    return scores.clamp(-clip, clip) - kl_coef * kl, kl
