"""E-GRM parallel sampling: M samples in one batched `generate` call vs M sequential calls,
measured side by side in one run (target: batched wall time <= 0.5x sequential).

For each question, the M direct decodings (the method's temperature/top-p schedule) are generated
once as one call with M rows and once as M calls of one row, in alternating order (ABBA, so cache
warmth and machine noise fall on both). The per-row seeds of `sampling.RowSampler` make both
produce the same samples, which the benchmark checks. The same is done for the K CoT paths.
Ratios are the totals over all questions; medians of the per-question ratios are shown too.

    python -m bench.egrm_cost --model models/grm_policy --questions 24

Without a trained policy (`--model` missing) an untrained tiny Llama is used: timing only.
Writes bench/results/egrm_cost.md and .json."""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `python bench/egrm_cost.py`
    sys.path.insert(0, str(REPO_ROOT))

from components.common.models import build_tiny_model, load_causal_lm  # noqa: E402
from components.common.params import TinyModelParams  # noqa: E402
from components.common.tokenizer import train_bpe_tokenizer  # noqa: E402
from components.grm_scorer import reasoning  # noqa: E402
from components.grm_scorer.decode import (  # noqa: E402
    COT,
    DIRECT,
    cot_temperatures,
    direct_schedule,
    question_key,
)
from components.grm_scorer.params import GatingParams  # noqa: E402
from components.grm_scorer.sampling import row_seed, sample  # noqa: E402
from experiments.report import table  # noqa: E402

RESULTS = REPO_ROOT / "bench" / "results"
TARGET_RATIO = 0.5
COT_SUFFIX = "\nLet's think step by step."


def load_model(path: Path) -> tuple[torch.nn.Module, Any, str]:
    if (path / "config.json").is_file():
        model, tokenizer = load_causal_lm(path)
        return model.eval(), tokenizer, str(path)
    problems = reasoning.make_problems(200, 2, 7, 9, random.Random(0), set())
    texts = [
        r["prompt"] + "\n" + r["response"] for r in reasoning.records_for(problems, "b", COT_SUFFIX)
    ]
    tokenizer = train_bpe_tokenizer(texts, 300)
    torch.manual_seed(0)
    model = build_tiny_model(
        TinyModelParams(hidden_size=96, intermediate_size=192, num_hidden_layers=2), tokenizer
    )
    return model.eval(), tokenizer, "untrained tiny Llama (no policy found)"


def phase_rows(question: str, gating: GatingParams, phase: str) -> dict[str, list]:
    if phase == "direct":
        schedule = direct_schedule(gating)
        return {
            "prompts": [question] * gating.m,
            "temperatures": [t for t, _ in schedule],
            "top_ps": [p for _, p in schedule],
            "seeds": [row_seed(0, question_key(question), DIRECT, i) for i in range(gating.m)],
        }
    temps = cot_temperatures(gating, 0, question)
    return {
        "prompts": [question + COT_SUFFIX] * gating.k,
        "temperatures": temps,
        "top_ps": [gating.cot_top_p] * gating.k,
        "seeds": [row_seed(0, question_key(question), COT, i) for i in range(gating.k)],
    }


def time_question(model, tokenizer, rows: dict[str, list], max_new: int, batched_first: bool):
    def batched():
        return sample(
            model, tokenizer, **rows, max_new_tokens=max_new, batch_size=len(rows["prompts"])
        )

    def sequential():
        texts, tokens = [], []
        for i in range(len(rows["prompts"])):
            one = {key: values[i : i + 1] for key, values in rows.items()}
            out = sample(model, tokenizer, **one, max_new_tokens=max_new, batch_size=1)
            texts += out.texts
            tokens += out.new_tokens
        return texts, tokens

    timings = {}
    order = ("batched", "sequential") if batched_first else ("sequential", "batched")
    for name in order:
        start = time.perf_counter()
        result = batched() if name == "batched" else sequential()
        timings[name] = time.perf_counter() - start
        if name == "batched":
            batched_texts, batched_tokens = result.texts, result.new_tokens
        else:
            sequential_texts, sequential_tokens = result
    same = batched_texts == sequential_texts
    return timings, same, sum(batched_tokens)


def measure_phase(
    model, tokenizer, problems: list[reasoning.Problem], gating: GatingParams, phase: str
) -> dict[str, float]:
    """Batched vs sequential over every question for one phase (ABBA order), totals and medians."""
    max_new, n = (
        (gating.max_new_tokens_direct, gating.m)
        if phase == "direct"
        else (gating.max_new_tokens_cot, gating.k)
    )
    totals = {"batched": 0.0, "sequential": 0.0}
    ratios, identical, tokens = [], 0, 0
    for index, problem in enumerate(problems):
        rows = phase_rows(problem.question, gating, phase)
        timings, same, new = time_question(model, tokenizer, rows, max_new, index % 2 == 0)
        for name in totals:
            totals[name] += timings[name]
        ratios.append(timings["batched"] / timings["sequential"])
        identical += same
        tokens += new
    return {
        "samples_per_call": n,
        "batched_s": totals["batched"],
        "sequential_s": totals["sequential"],
        "ratio": totals["batched"] / totals["sequential"],
        "median_ratio": statistics.median(ratios),
        "identical_samples": identical / len(problems),
        "tokens_per_question": tokens / len(problems),
    }


def render(results: dict[str, Any]) -> str:
    header = (
        "phase",
        "samples per call",
        "batched s",
        "sequential s",
        "ratio (total)",
        "median ratio",
        "identical samples",
        "target",
    )
    rows = [
        (
            phase,
            r["samples_per_call"],
            f"{r['batched_s']:.2f}",
            f"{r['sequential_s']:.2f}",
            f"{r['ratio']:.2f}",
            f"{r['median_ratio']:.2f}",
            f"{r['identical_samples']:.0%}",
            f"<= {TARGET_RATIO} {'met' if r['ratio'] <= TARGET_RATIO else 'missed'}",
        )
        for phase, r in results["phases"].items()
    ]
    return "\n".join(
        [
            "# E-GRM: batched parallel sampling vs sequential calls",
            "",
            f"Model: {results['model']}; {results['questions']} questions; {results['machine']}.",
            "",
            table(header, rows),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.egrm_cost")
    parser.add_argument("--model", type=Path, default=REPO_ROOT / "models" / "grm_policy")
    parser.add_argument("--questions", type=int, default=24)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    model, tokenizer, source = load_model(args.model)
    gating = GatingParams()
    problems = reasoning.make_problems(args.questions, 2, 7, 9, random.Random(1), set())
    # warm-up: first calls allocate caches and pick kernels
    for phase, max_new in (
        ("direct", gating.max_new_tokens_direct),
        ("cot", gating.max_new_tokens_cot),
    ):
        time_question(
            model, tokenizer, phase_rows(problems[0].question, gating, phase), max_new, True
        )

    results: dict[str, Any] = {"model": source, "questions": args.questions, "phases": {}}
    for phase in ("direct", "cot"):
        results["phases"][phase] = measure_phase(model, tokenizer, problems, gating, phase)
    results["target_ratio"] = TARGET_RATIO
    results["machine"] = (
        f"{platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "egrm_cost.json").write_text(json.dumps(results, indent=2) + "\n")
    page = render(results)
    (args.out / "egrm_cost.md").write_text(page + "\n")
    print(page)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
