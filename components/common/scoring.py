"""Likelihood scoring of many (prefix, continuation) sequences, one forward pass per batch.

The building block of option scoring (MCQ cloze) and fact probes: each sequence's mean
log-probability of its labelled tokens (the continuation), i.e. minus the SFT loss when the
features come from `sft.encode_record`."""

from __future__ import annotations

from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from components.common.sft import IGNORE_INDEX, sft_collator


def encode_continuation(
    tokenizer: PreTrainedTokenizerBase,
    prefix: str,
    continuation: str,
    max_length: int,
    add_eos: bool = False,
) -> dict[str, list[int]]:
    """Raw text features (no chat template): only the continuation's tokens are labelled.

    The prefix is kept whole and the continuation truncated, so the scored tokens never drift."""
    prefix_ids = tokenizer(prefix, add_special_tokens=False)["input_ids"]
    continuation_ids = tokenizer(continuation, add_special_tokens=False)["input_ids"]
    if add_eos:
        continuation_ids = continuation_ids + [tokenizer.eos_token_id]
    input_ids = (prefix_ids + continuation_ids)[:max_length]
    labels = ([IGNORE_INDEX] * len(prefix_ids) + continuation_ids)[:max_length]
    return {"input_ids": input_ids, "attention_mask": [1] * len(input_ids), "labels": labels}


@torch.no_grad()
def mean_logprobs(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    features: list[dict[str, Any]],
    batch_size: int = 64,
) -> torch.Tensor:
    """Mean log-probability of each sequence's labelled tokens (length-normalised likelihood)."""
    was_training = model.training
    model.eval()
    collate = sft_collator(tokenizer)
    scores: list[torch.Tensor] = []
    for start in range(0, len(features), batch_size):
        batch = collate([dict(f) for f in features[start : start + batch_size]]).to(model.device)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        labels = batch["labels"][:, 1:]
        logprobs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
        mask = labels != IGNORE_INDEX
        picked = logprobs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        counts = mask.sum(dim=1).clamp(min=1)
        scores.append(((picked * mask).sum(dim=1) / counts).cpu())
    model.train(was_training)
    return torch.cat(scores) if scores else torch.empty(0)
