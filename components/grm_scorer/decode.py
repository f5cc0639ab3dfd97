"""The two decoding phases of E-GRM on a list of questions, with per-sample costs.

- direct probe: M samples per question, T_i = temps_direct[i % len], p_i = top_p_direct[i % len]
  (with the reference code's four temperatures and M = 5, samples 0 and 4 are both greedy and
  identical);
- CoT paths: K samples per question on `question + cot_suffix`, T ~ U(lo, hi) per path, top-p 0.95.

Each phase is one batched `generate` over all (question, sample) rows (chunked by batch_size).
Row seeds depend on (seed, question text, phase, sample index) only, so a question's samples are
the same whatever else is decoded with it."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import torch
from transformers import PreTrainedTokenizerBase

from components.grm_scorer.consensus import extract_answer
from components.grm_scorer.cost import FlopsModel, Sample, apportion_wall
from components.grm_scorer.params import GatingParams
from components.grm_scorer.sampling import Generations, row_seed, sample, uniform_noise

DIRECT, COT = 0, 1


def question_key(question: str) -> int:
    return zlib.crc32(question.encode("utf-8"))


def direct_schedule(gating: GatingParams) -> list[tuple[float, float]]:
    temps, top_ps = gating.temps_direct, gating.top_p_direct
    return [(temps[i % len(temps)], top_ps[i % len(top_ps)]) for i in range(gating.m)]


def cot_temperatures(gating: GatingParams, seed: int, question: str) -> list[float]:
    """K temperatures drawn U(lo, hi), a pure function of (seed, question)."""
    lo, hi = gating.cot_temp_range
    seeds = torch.tensor(
        [row_seed(seed, question_key(question), COT, 1000 + k) for k in range(gating.k)]
    )
    u = uniform_noise(seeds, 0, 1)[:, 0]
    return [lo + (hi - lo) * float(x) for x in u]


def _to_samples(
    generations: Generations, flops: FlopsModel, answer_format: str, per_question: int
) -> list[list[Sample]]:
    walls = apportion_wall(generations.wall_s, generations.new_tokens)
    rows = [
        Sample(
            answer=extract_answer(text, answer_format),  # type: ignore[arg-type]
            tokens=new,
            flops=flops.decoder_flops(prompt, new),
            wall_s=wall,
        )
        for text, prompt, new, wall in zip(
            generations.texts, generations.prompt_tokens, generations.new_tokens, walls, strict=True
        )
    ]
    return [rows[i : i + per_question] for i in range(0, len(rows), per_question)]


def direct_samples(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    questions: Sequence[str],
    gating: GatingParams,
    seed: int,
) -> tuple[list[list[Sample]], Generations]:
    schedule = direct_schedule(gating)
    prompts, temps, top_ps, seeds = [], [], [], []
    for question in questions:
        for i, (temperature, top_p) in enumerate(schedule):
            prompts.append(question)
            temps.append(temperature)
            top_ps.append(top_p)
            seeds.append(row_seed(seed, question_key(question), DIRECT, i))
    out = sample(
        model,
        tokenizer,
        prompts,
        temps,
        top_ps,
        seeds,
        gating.max_new_tokens_direct,
        gating.batch_size,
    )
    return _to_samples(out, FlopsModel.of(model), gating.answer_format, gating.m), out


def cot_samples(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    questions: Sequence[str],
    gating: GatingParams,
    seed: int,
    cot_suffix: str,
) -> tuple[list[list[Sample]], Generations]:
    """K CoT paths per question; the returned Generations keep the paths' texts."""
    prompts, temps, top_ps, seeds = [], [], [], []
    for question in questions:
        for i, temperature in enumerate(cot_temperatures(gating, seed, question)):
            prompts.append(question + cot_suffix)
            temps.append(temperature)
            top_ps.append(gating.cot_top_p)
            seeds.append(row_seed(seed, question_key(question), COT, i))
    out = sample(
        model,
        tokenizer,
        prompts,
        temps,
        top_ps,
        seeds,
        gating.max_new_tokens_cot,
        gating.batch_size,
    )
    return _to_samples(out, FlopsModel.of(model), gating.answer_format, gating.k), out
