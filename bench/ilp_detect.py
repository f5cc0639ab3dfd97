"""ILP detection throughput: batched MCQ option scoring (8 candidate answers per record, every
sequence of a batch in one forward pass, hard distractors, BoN-5 x 3 seeds sampled from the option
distribution) vs a per-record loop of sampled `generate` calls (5 samples x 3 seeds per record,
exact match), same records, same model, one run.

    python bench/ilp_detect.py [--model smollm2|tiny] [--records 48]

Prints records/second of both and their ratio (target >= 10x), writes them to
docs/results/ilp_detect_bench.json and the bench block of docs/results/ilp.md. The loop's pass
rate is strict exact match of free text ("The capital of France is Paris." is not "Paris"), so
only its speed is comparable; the batched detector's pass rate is the one ILP uses."""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch

from components.common.io import write_json
from components.common.models import build_tiny_model, load_causal_lm, materialize_smollm2
from components.common.params import TinyModelParams
from components.common.tokenizer import train_bpe_tokenizer
from components.ilp_diagnosis import mcq
from experiments.report import replace_section, table

RESULTS = Path(__file__).resolve().parents[1] / "docs/results"

CAPITALS = {
    "France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid", "Japan": "Tokyo",
    "Egypt": "Cairo", "Peru": "Lima", "Kenya": "Nairobi", "Canada": "Ottawa", "Chile": "Santiago",
    "Norway": "Oslo", "Greece": "Athens", "Poland": "Warsaw", "Cuba": "Havana", "Iran": "Tehran",
    "Russia": "Moscow",
}  # fmt: skip


def records(n: int) -> list[dict]:
    rng = random.Random(0)
    items = list(CAPITALS.items())
    return [
        {
            "id": f"r{i}",
            "task": "qa",
            "prompt": f"What is the capital of {country}?",
            "response": capital,
        }
        for i, (country, capital) in enumerate(rng.choices(items, k=n))
    ]


def load(kind: str):
    if kind == "smollm2":
        return load_causal_lm(materialize_smollm2(Path(".cache/smollm2")))
    texts = [f"{r['prompt']}\n{r['response']}" for r in records(64)]
    tokenizer = train_bpe_tokenizer(texts, vocab_size=300)
    arch = TinyModelParams(hidden_size=64, intermediate_size=128, num_hidden_layers=2)
    return build_tiny_model(arch, tokenizer), tokenizer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=["smollm2", "tiny"], default="smollm2")
    parser.add_argument("--records", type=int, default=48)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, tokenizer = load(args.model)
    data = records(args.records)
    seeds, n = (0, 1, 2), 5
    questions = mcq.build_questions(data, pool_size=8, seed=0)

    start = time.perf_counter()
    batched_rates = mcq.detect(
        model, tokenizer, questions, n=n, seeds=seeds, threshold=0.2, max_length=96,
        max_new_tokens=8,
    ).pass_rates  # fmt: skip
    batched = time.perf_counter() - start

    start = time.perf_counter()
    loop_rates = [
        mcq.sampled_exact_match(model, tokenizer, [q], n, seeds, max_new_tokens=8, batch_size=1)
        for q in questions
    ]
    loop = time.perf_counter() - start

    result = {
        "model": args.model,
        "records": len(data),
        "batched_records_per_s": len(data) / batched,
        "generate_loop_records_per_s": len(data) / loop,
        "speedup": loop / batched,
        "batched_mean_pass": float(batched_rates.mean()),
        "loop_mean_pass": float(sum(r.mean() for r in loop_rates) / len(loop_rates)),
    }
    print(json.dumps(result, indent=2))
    write_json(
        RESULTS / f"ilp_detect_bench{'' if args.model == 'smollm2' else '_' + args.model}.json",
        result,
    )
    if args.model == "smollm2":
        replace_section(RESULTS / "ilp.md", "bench", bench_table(result, args.threads))


def bench_table(result: dict, threads: int) -> str:
    rows = [
        [
            "batched option scoring",
            f"{result['batched_records_per_s']:.3f}",
            f"{result['batched_mean_pass']:.2f}",
        ],
        [
            "per-record `generate` loop",
            f"{result['generate_loop_records_per_s']:.3f}",
            f"{result['loop_mean_pass']:.2f} (strict exact match of free text)",
        ],
    ]
    return (
        f"`python bench/ilp_detect.py` ({result['model']}, {result['records']} records, "
        f"{threads} CPU thread, 8 options per record, BoN-5 on 3 seeds):\n\n"
        + table(["detector", "records/s", "mean pass rate"], rows)
        + f"\n\nSpeed-up **{result['speedup']:.1f}x** (target >= 10x)."
    )


if __name__ == "__main__":
    main()
