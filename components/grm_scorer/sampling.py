"""Parallel sampling with a per-row temperature / top-p schedule in one batched `generate` call.

`generate` takes one temperature for the whole batch, but the method's M direct decodings each have
their own (T_i, p_i). `RowSampler` is a logits processor that applies each row's temperature and
top-p and adds Gumbel noise; `generate` then runs in greedy mode, so its argmax is an exact sample
of the row's softmax (the Gumbel-max trick), and T = 0 rows (no noise) are plain greedy decoding.

The noise comes from a counter-based hash of (row seed, decoding step, token id) instead of the
global RNG, so a row's sample does not depend on which other rows share its batch. That makes
E-GRM's CoT paths for the triggered subset the very paths always-CoT draws for those items (paired
comparisons) and lets the benchmark check that batched and sequential calls agree."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import LogitsProcessor, LogitsProcessorList, PreTrainedTokenizerBase

from components.common.models import render_prompt

_MASK64 = (1 << 64) - 1


def _signed(value: int) -> int:
    value &= _MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


_GOLDEN, _MUL1, _MUL2 = (
    _signed(0x9E3779B97F4A7C15),
    _signed(0xBF58476D1CE4E5B9),
    _signed(0x94D049BB133111EB),
)


def _shr(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Logical right shift of int64 (torch's >> is arithmetic on negative values)."""
    return (x >> bits) & ((1 << (64 - bits)) - 1)


def _splitmix64(x: torch.Tensor) -> torch.Tensor:
    """The splitmix64 finaliser on int64 tensors (multiplication wraps around)."""
    x = x ^ _shr(x, 30)
    x = x * _MUL1
    x = x ^ _shr(x, 27)
    x = x * _MUL2
    return x ^ _shr(x, 31)


def uniform_noise(row_seeds: torch.Tensor, step: int, vocab: int) -> torch.Tensor:
    """U(0, 1) of shape (rows, vocab), a pure function of (row seed, step, token id)."""
    base = _splitmix64(row_seeds.long() * _GOLDEN + step)
    counters = base[:, None] + torch.arange(vocab, dtype=torch.long) * _GOLDEN
    bits = _shr(_splitmix64(counters), 11)  # 53 random bits
    return (bits.double() + 0.5) / float(1 << 53)


def _splitmix64_int(x: int) -> int:
    """The same finaliser on a Python int (unsigned 64-bit arithmetic)."""
    x &= _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def row_seed(*parts: int) -> int:
    """A stable 63-bit seed from integers (e.g. run seed, question key, sample index)."""
    value = 0
    for part in parts:
        value = _splitmix64_int(value * 0x9E3779B97F4A7C15 + int(part))
    return value & ((1 << 63) - 1)


class RowSampler(LogitsProcessor):
    """Per-row temperature and top-p, then Gumbel noise; use with `do_sample=False`."""

    def __init__(
        self, temperatures: Sequence[float], top_ps: Sequence[float], seeds: Sequence[int]
    ):
        self.temperatures = torch.tensor(temperatures, dtype=torch.float32)
        self.top_ps = torch.tensor(top_ps, dtype=torch.float32)
        self.seeds = torch.tensor(seeds, dtype=torch.long)
        self.start: int | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.Tensor:
        if self.start is None:
            self.start = input_ids.shape[1]
        step = input_ids.shape[1] - self.start  # tokens generated so far: batch-independent
        scores = scores.float()
        sampled = self.temperatures > 0
        logits = scores / self.temperatures.clamp(min=1e-6)[:, None].to(scores.device)
        logits = _top_p(logits, self.top_ps.to(scores.device))
        gumbel = -torch.log(-torch.log(uniform_noise(self.seeds, step, scores.shape[1])))
        noisy = logits + gumbel.to(logits.dtype).to(scores.device)
        # greedy rows keep their raw scores, so their argmax is exactly greedy decoding's
        return torch.where(sampled[:, None].to(scores.device), noisy, scores)


def _top_p(logits: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    """Nucleus filtering per row: keep the smallest set of tokens whose mass reaches p."""
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    drop_sorted = (cumulative - sorted_logits.softmax(dim=-1)) >= top_p[:, None]
    drop = drop_sorted.scatter(1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


@dataclass
class Generations:
    texts: list[str]
    prompt_tokens: list[int]  # per row, without padding
    new_tokens: list[int]  # per row: up to and including EOS, never padding
    decode_steps: int  # batched forward passes actually run (max new length per chunk, summed)
    wall_s: float


@torch.no_grad()
def sample(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    temperatures: Sequence[float],
    top_ps: Sequence[float],
    seeds: Sequence[int],
    max_new_tokens: int,
    batch_size: int,
) -> Generations:
    """One sample per row (prompt, T, p, seed); rows go through `generate` in chunks of
    `batch_size` (one call when batch_size >= rows)."""
    if not len(prompts) == len(temperatures) == len(top_ps) == len(seeds):
        raise ValueError("prompts, temperatures, top_ps and seeds must have one entry per row")
    padding_side, was_training = tokenizer.padding_side, model.training
    tokenizer.padding_side = "left"
    model.eval()
    out = Generations([], [], [], 0, 0.0)
    start = time.perf_counter()
    try:
        for lo in range(0, len(prompts), batch_size):
            hi = min(lo + batch_size, len(prompts))
            texts = [render_prompt(tokenizer, p) for p in prompts[lo:hi]]
            batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            batch = batch.to(model.device)
            sampler = RowSampler(temperatures[lo:hi], top_ps[lo:hi], seeds[lo:hi])
            output = model.generate(
                **batch,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                logits_processor=LogitsProcessorList([sampler]),
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
                temperature=None,
                top_p=None,
                top_k=None,
            )
            new = output[:, batch["input_ids"].shape[1] :].cpu()
            out.decode_steps += new.shape[1]
            out.prompt_tokens.extend(batch["attention_mask"].sum(dim=1).tolist())
            for row in new.tolist():
                length = (
                    row.index(tokenizer.eos_token_id) + 1
                    if tokenizer.eos_token_id in row
                    else len(row)
                )
                out.new_tokens.append(length)
                out.texts.append(tokenizer.decode(row[:length], skip_special_tokens=True).strip())
    finally:
        tokenizer.padding_side = padding_side
        model.train(was_training)
    out.wall_s = time.perf_counter() - start
    return out
