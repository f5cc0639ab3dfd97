"""SFT examples as model inputs: the rendered prompt (or, for a chat record, every turn before the
last assistant turn) is masked out of the loss (labels -100), the response and EOS are learned.
Shared by fine-tuning, evaluation and per-sample diagnostics."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset
from transformers import DataCollatorForSeq2Seq, PreTrainedTokenizerBase

from components.common.models import render_prompt, render_record_prompt

IGNORE_INDEX = -100


def encode_record(
    tokenizer: PreTrainedTokenizerBase, record: dict[str, Any], max_length: int
) -> dict[str, list[int]]:
    prompt = tokenizer(render_record_prompt(tokenizer, record), add_special_tokens=False)
    response = tokenizer(record["response"], add_special_tokens=False)
    prompt_ids = prompt["input_ids"]
    response_ids = response["input_ids"] + [tokenizer.eos_token_id]
    input_ids = (prompt_ids + response_ids)[:max_length]
    labels = ([IGNORE_INDEX] * len(prompt_ids) + response_ids)[:max_length]
    return {"input_ids": input_ids, "attention_mask": [1] * len(input_ids), "labels": labels}


class SFTDataset(Dataset):
    def __init__(
        self, records: list[dict[str, Any]], tokenizer: PreTrainedTokenizerBase, max_length: int
    ) -> None:
        self.records = records
        self.features = [encode_record(tokenizer, r, max_length) for r in records]

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        return self.features[index]


def first_per_task(records: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """At most `limit` records of each task, in file order."""
    kept: dict[str, int] = {}
    out = []
    for record in records:
        if kept.setdefault(record["task"], 0) < limit:
            kept[record["task"]] += 1
            out.append(record)
    return out


def sft_collator(tokenizer: PreTrainedTokenizerBase) -> DataCollatorForSeq2Seq:
    """Right-pads inputs and pads labels with IGNORE_INDEX."""
    return DataCollatorForSeq2Seq(
        tokenizer, padding=True, label_pad_token_id=IGNORE_INDEX, return_tensors="pt"
    )


def greedy_answers(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[str],
    max_new_tokens: int,
    batch_size: int,
) -> list[str]:
    """Batched greedy answers (first line, stripped) to plain prompts, each rendered as a user
    turn (`render_prompt`)."""
    texts = [render_prompt(tokenizer, p) for p in prompts]
    return greedy_continuations(model, tokenizer, texts, max_new_tokens, batch_size)


def greedy_record_answers(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    records: list[dict[str, Any]],
    max_new_tokens: int,
    batch_size: int,
) -> list[str]:
    """`greedy_answers` to SFT records as they were trained: a chat record's whole conversation
    before its response, system turn included (`render_record_prompt`)."""
    texts = [render_record_prompt(tokenizer, r) for r in records]
    return greedy_continuations(model, tokenizer, texts, max_new_tokens, batch_size)


def greedy_continuations(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    max_new_tokens: int,
    batch_size: int,
) -> list[str]:
    """Batched greedy generation (left padding) after already rendered `texts`; returns each
    continuation's first line, stripped."""
    return _continuations(model, tokenizer, texts, max_new_tokens, batch_size, do_sample=False)


def sampled_continuations(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    max_new_tokens: int,
    batch_size: int,
    samples: int,
    temperature: float,
    top_p: float,
) -> list[list[str]]:
    """`samples` sampled continuations (first lines, stripped) per rendered text; seed torch
    first for repeatable draws."""
    flat = _continuations(
        model,
        tokenizer,
        texts,
        max_new_tokens,
        batch_size,
        do_sample=True,
        temperature=temperature,
        top_p=top_p,
        num_return_sequences=samples,
    )
    return [flat[i : i + samples] for i in range(0, len(flat), samples)]


@torch.no_grad()
def _continuations(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    max_new_tokens: int,
    batch_size: int,
    **generation: Any,
) -> list[str]:
    padding_side, was_training = tokenizer.padding_side, model.training
    tokenizer.padding_side = "left"
    model.eval()
    answers: list[str] = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(
            texts[start : start + batch_size],
            return_tensors="pt",
            padding=True,
            add_special_tokens=False,
        )
        batch = batch.to(model.device)
        output = model.generate(
            **batch,
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            **generation,
        )
        new_tokens = output[:, batch["input_ids"].shape[1] :]
        for text in tokenizer.batch_decode(new_tokens, skip_special_tokens=True):
            stripped = text.strip()
            answers.append(stripped.splitlines()[0].strip() if stripped else "")
    tokenizer.padding_side = padding_side
    model.train(was_training)
    return answers


@torch.no_grad()
def per_record_loss(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    records: list[dict[str, Any]],
    max_length: int,
    batch_size: int = 64,
) -> list[float]:
    """Mean cross-entropy of each record's response tokens (the SFT loss, one value per record)."""
    was_training = model.training
    model.eval()
    collate = sft_collator(tokenizer)
    losses: list[float] = []
    for start in range(0, len(records), batch_size):
        features = [
            encode_record(tokenizer, r, max_length) for r in records[start : start + batch_size]
        ]
        batch = collate(features).to(model.device)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        labels = batch["labels"][:, 1:]
        token_loss = torch.nn.functional.cross_entropy(
            logits[:, :-1].transpose(1, 2).float(),
            labels,
            ignore_index=IGNORE_INDEX,
            reduction="none",
        )
        counts = (labels != IGNORE_INDEX).sum(dim=1).clamp(min=1)
        losses.extend((token_loss.sum(dim=1) / counts).tolist())
    model.train(was_training)
    return losses
