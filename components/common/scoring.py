"""Likelihood scoring of many (prefix, continuation) sequences, batched.

The building block of option scoring (MCQ cloze) and fact probes. `mean_logprobs` scores encoded
sequences one by one in batches (minus the SFT loss for `sft.encode_record` features);
`shared_prefix_logprobs` gives the same numbers when many continuations share one prefix, with
the prefix computed once (KV cache repeated for its continuations)."""

from __future__ import annotations

from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from components.common.sft import IGNORE_INDEX, sft_collator


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


@torch.no_grad()
def shared_prefix_logprobs(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prefixes: list[str],
    continuations: list[list[str]],
    max_length: int,
    batch_size: int = 64,
    add_eos: bool = True,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(summed log-prob, token count) of every continuation of every prefix.

    Each prefix goes through the model once; its KV cache is repeated for its continuations, which
    all go through one more forward pass per batch. Same numbers as scoring every
    (prefix + continuation) sequence on its own (tokenised apart, as `sft.encode_record` does),
    at the cost of the prefix once instead of once per continuation."""
    was_training = model.training
    model.eval()
    eos = [tokenizer.eos_token_id] if add_eos else []
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    out: list[tuple[torch.Tensor, torch.Tensor]] = []
    width = max((len(c) for c in continuations), default=1) or 1
    step = max(1, batch_size // width)
    for start in range(0, len(prefixes), step):
        heads = [
            tokenizer(p, add_special_tokens=False)["input_ids"][: max_length - 1]
            for p in prefixes[start : start + step]
        ]
        tails = [
            [
                (tokenizer(c, add_special_tokens=False)["input_ids"] + eos)[: max_length - len(h)]
                for c in cs
            ]
            for h, cs in zip(heads, continuations[start : start + step], strict=True)
        ]
        out.extend(_score_batch(model, heads, tails, pad))
    model.train(was_training)
    return out


def _score_batch(model, heads: list[list[int]], tails: list[list[list[int]]], pad: int):
    device = model.device
    n, k = len(heads), max(len(t) for t in tails) or 1
    p_len = max(len(h) for h in heads)
    ids = torch.full((n, p_len), pad, dtype=torch.long)
    mask = torch.zeros((n, p_len), dtype=torch.long)
    for i, head in enumerate(heads):  # left padding: every prefix ends at the last column
        ids[i, p_len - len(head) :] = torch.tensor(head)
        mask[i, p_len - len(head) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    first = model(
        input_ids=ids.to(device),
        attention_mask=mask.to(device),
        position_ids=positions.to(device),
        use_cache=True,
    )
    first_logp = torch.log_softmax(first.logits[:, -1].float(), -1)  # predicts token 1
    cache = first.past_key_values
    cache.batch_repeat_interleave(k)

    c_len = max((len(c) for t in tails for c in t), default=1) or 1
    cont = torch.full((n * k, c_len), pad, dtype=torch.long)
    cont_mask = torch.zeros((n * k, c_len), dtype=torch.long)
    for i, tail in enumerate(tails):
        for j, tokens in enumerate(tail):
            cont[i * k + j, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
            cont_mask[i * k + j, : len(tokens)] = 1
    full_mask = torch.cat([mask.repeat_interleave(k, 0), cont_mask], dim=1)
    cont_positions = mask.sum(-1, keepdim=True).repeat_interleave(k, 0) + torch.arange(c_len)
    second = model(
        input_ids=cont.to(device),
        attention_mask=full_mask.to(device),
        position_ids=cont_positions.to(device),
        past_key_values=cache,
        use_cache=True,
    )
    logp = torch.cat(
        [
            first_logp.repeat_interleave(k, 0).unsqueeze(1),
            torch.log_softmax(second.logits[:, :-1].float(), -1),
        ],
        dim=1,
    ).cpu()
    picked = logp.gather(-1, cont.unsqueeze(-1)).squeeze(-1) * cont_mask
    sums, counts = picked.sum(1), cont_mask.sum(1)
    return [
        (sums[i * k : i * k + len(t)], counts[i * k : i * k + len(t)]) for i, t in enumerate(tails)
    ]
