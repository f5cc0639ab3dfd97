"""ILP detection throughput: ILP's detector (batched MCQ option scoring) against the naive
detectors that also perform the task, measured interleaved in one run.

    python -m bench.ilp_detect [--model smollm2|tiny] [--records 16] [--repeats 5]
    python -m bench.ilp_detect --render    # rewrite the page section from the committed JSON

Detectors, on the same records, model and seeds (BoN-5 on 3 seeds, unlearned = pass rate < 0.2
on every seed):

- `batched_scoring` (ILP): every record's 8 candidate answers scored in batched forward passes,
  hard distractors, BoN-5 drawn from the distribution over the 4 options.
- `per_record_scoring`: the same option scoring, one record per call (batch size 1).
- `batched_generation`: 5 sampled `generate` answers per record and seed, 16 records per call,
  scored by containment (the normalised gold answer appears as whole words in the first line:
  "The capital of France is Paris." counts as "Paris").
- `per_record_generation`: the previous baseline, one record per `generate` call, on the first
  `--loop-records` records only (it is the slowest); scored by strict exact match (its 0.00) and
  by containment, from the same samples.

Repetitions are interleaved in ABCD DCBA order after one untimed warm-up call of each detector.
Ratios are taken per repetition (mean ± sample std and 95 % t interval over repetitions); the
target (>= 10x) is judged against the best naive detector that performs the task. The previous
run's ratio (sequential: all of ILP's detector, then all of the loop) is kept in the JSON and
decomposed here into its factors: batching of the scoring, and scoring vs per-record generation.
Writes docs/results/ilp_detect_bench.json and the `ilp_detect` block of docs/results/ilp.md."""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from components.common.io import write_json
from components.common.models import build_tiny_model, load_causal_lm, materialize_smollm2
from components.common.params import TinyModelParams
from components.common.tokenizer import train_bpe_tokenizer
from components.ilp_diagnosis import mcq
from components.ilp_diagnosis.templates import normalise_answer
from experiments.report import pm, table
from experiments.stats import Interval, mean_ci, threshold_verdict
from experiments.world_facts import CAPITALS as WORLD_CAPITALS

RESULTS = Path(__file__).resolve().parents[1] / "docs/results"
SEEDS, N, THRESHOLD, MAX_NEW_TOKENS = (0, 1, 2), 5, 0.2, 8
TARGET = 10.0
ILP = "batched_scoring"
OLD_BASELINE = "per_record_generation"
NAIVE = ("per_record_scoring", "batched_generation")  # the baselines that perform the task
LABELS = {
    "batched_scoring": "batched option scoring (ILP)",
    "per_record_scoring": "per-record option scoring",
    "batched_generation": "batched free-text `generate`, containment",
    "per_record_generation": "per-record free-text `generate` (previous baseline)",
}

# the first 16 countries of the table SmolLM2 is probed on
CAPITALS = dict(itertools.islice(WORLD_CAPITALS.items(), 16))


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


def contains_answer(text: str, gold: str) -> bool:
    """The normalised gold answer occurs as whole words in the normalised text."""
    return (
        re.search(rf"\b{re.escape(normalise_answer(gold))}\b", normalise_answer(text)) is not None
    )


def scored_samples(samples: list[list[list[str]]], questions: Sequence[mcq.Question]) -> dict:
    """samples[seed][question] -> N answers; pass rates [questions, seeds] under strict exact
    match and under containment."""
    exact = np.zeros((len(questions), len(samples)))
    contained = np.zeros_like(exact)
    for s, per_question in enumerate(samples):
        for i, (question, drawn) in enumerate(zip(questions, per_question, strict=True)):
            gold = normalise_answer(question.answer)
            exact[i, s] = np.mean([normalise_answer(a) == gold for a in drawn])
            contained[i, s] = np.mean([contains_answer(a, question.answer) for a in drawn])
    return {"rates": contained, "exact_rates": exact}


def generation(model, tokenizer, questions, batch_size: int) -> dict:
    samples = [
        mcq.sampled_answers(model, tokenizer, questions, N, seed, MAX_NEW_TOKENS, batch_size)
        for seed in SEEDS
    ]
    return scored_samples(samples, questions)


def scoring(model, tokenizer, questions, batch_size: int) -> dict:
    found = mcq.detect(
        model, tokenizer, questions, n=N, seeds=SEEDS, threshold=THRESHOLD, max_length=96,
        max_new_tokens=MAX_NEW_TOKENS, batch_size=batch_size,
    )  # fmt: skip
    return {"rates": found.pass_rates, "gold_prob": found.gold_prob()}


def per_record(detector: Callable) -> Callable:
    """The detector called on one record at a time, results stacked."""

    def run(model, tokenizer, questions, batch_size: int) -> dict:
        parts = [detector(model, tokenizer, [q], 1) for q in questions]
        return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}

    return run


DETECTORS: dict[str, tuple[Callable, int]] = {
    "batched_scoring": (scoring, 64),
    "per_record_scoring": (per_record(scoring), 1),
    "batched_generation": (generation, 16),
    "per_record_generation": (per_record(generation), 1),
}


def interleaved_order(repeat: int) -> list[str]:
    """ABCD on even repetitions, DCBA on odd ones: a linear drift in machine speed cancels."""
    names = list(DETECTORS)
    return names if repeat % 2 == 0 else names[::-1]


def measure(model, tokenizer, questions, loop_records: int, repeats: int) -> dict:
    subsets = {name: questions for name in DETECTORS}
    subsets[OLD_BASELINE] = questions[:loop_records]
    for name, (detector, batch_size) in DETECTORS.items():  # warm-up, untimed
        detector(model, tokenizer, subsets[name][:1], batch_size)
    rates: dict[str, list[float]] = {name: [] for name in DETECTORS}
    outputs: dict[str, dict] = {}
    load_before, began = os.getloadavg()[0], time.perf_counter()
    for repeat in range(repeats):
        for name in interleaved_order(repeat):
            detector, batch_size = DETECTORS[name]
            start = time.perf_counter()
            outputs[name] = detector(model, tokenizer, subsets[name], batch_size)
            rates[name].append(len(subsets[name]) / (time.perf_counter() - start))
            print(f"repeat {repeat} {name}: {rates[name][-1]:.3f} records/s", flush=True)
    return {
        "records_per_s": rates,
        "quality": quality(outputs, len(subsets[OLD_BASELINE])),
        "load_average_1min": [load_before, os.getloadavg()[0]],
        "seconds": time.perf_counter() - began,
    }


def unlearned(rates: np.ndarray) -> np.ndarray:
    return (rates < THRESHOLD).all(axis=1)


def quality(outputs: dict[str, dict], loop_records: int) -> dict[str, dict]:
    """Per detector (last repetition): mean pass rate, unlearned count and the agreement of its
    unlearned verdicts with ILP's on the records it saw."""
    reference = unlearned(outputs[ILP]["rates"])
    out = {}
    for name, result in outputs.items():
        verdicts = unlearned(result["rates"])
        out[name] = {
            "records": len(verdicts),
            "mean_pass": float(result["rates"].mean()),
            "unlearned": int(verdicts.sum()),
            "agreement_with_ilp": float((verdicts == reference[: len(verdicts)]).mean()),
        }
        if "exact_rates" in result:
            out[name]["mean_pass_exact_match"] = float(result["exact_rates"].mean())
        if "gold_prob" in result:
            gap = np.abs(result["gold_prob"] - outputs[ILP]["gold_prob"])
            out[name]["max_gold_prob_difference_vs_ilp"] = float(gap.max())
    return out


def ratios(rates: dict[str, list[float]]) -> dict[str, list[float]]:
    """Per repetition: ILP's records/s over each other detector's (the speed-up), and the two
    factors of the speed-up over the previous baseline."""
    per = {
        f"ilp_vs_{name}": np.divide(rates[ILP], rates[name]) for name in DETECTORS if name != ILP
    }
    per["batching_of_scoring"] = per["ilp_vs_per_record_scoring"]
    per["scoring_vs_per_record_generation"] = np.divide(
        rates["per_record_scoring"], rates[OLD_BASELINE]
    )
    return {k: [float(x) for x in v] for k, v in per.items()}


def ratio_ci(values: Sequence[float]) -> Interval:
    """Geometric mean and 95 % t interval of per-repetition ratios, taken on their logarithms
    (a ratio's spread is multiplicative; the interval stays positive)."""
    logs = mean_ci([math.log(v) for v in values])
    return Interval(math.exp(logs.estimate), math.exp(logs.low), math.exp(logs.high))


def derive(raw: dict) -> dict:
    """The raw run (settings, records/s per repetition, quality) plus every figure the page
    shows, computed from it: per-repetition ratios, the best naive detector, the headline."""
    rates = raw["records_per_s"]
    per_repeat = ratios(rates)
    performing = [name for name in NAIVE if raw["quality"][name]["mean_pass"] > 0]
    best_naive = max(performing or NAIVE, key=lambda n: np.mean(rates[n]))
    headline = ratio_ci(per_repeat[f"ilp_vs_{best_naive}"])
    return raw | {
        "ratios_per_repeat": per_repeat,
        "best_naive": best_naive,
        "speedup_vs_best_naive": {
            "geometric_mean": headline.estimate,
            "ci95": [headline.low, headline.high],
            "verdict_ge_target": threshold_verdict(headline, TARGET),
            "target": TARGET,
        },
    }


def raw_run(measured: dict, args: argparse.Namespace, previous: dict | None) -> dict:
    return {
        "model": args.model,
        "records": args.records,
        "loop_records": args.loop_records,
        "repeats": args.repeats,
        "threads": args.threads,
        "order": "ABCD DCBA interleaved, one untimed warm-up call each",
        "load_average_1min": measured["load_average_1min"],
        "seconds": measured["seconds"],
        "records_per_s": measured["records_per_s"],
        "quality": measured["quality"],
        "previous_sequential_run": previous,
    }


def previous_run(path: Path) -> dict | None:
    """The previous run's figures (the sequential one, kept once it is superseded)."""
    if not path.is_file():
        return None
    old = json.loads(path.read_text())
    return old.get("previous_sequential_run", old)


def ci_text(values: Sequence[float]) -> str:
    return ratio_ci(values).format(1).replace(" [", "× [", 1)


def page_section(result: dict) -> str:
    rates, per_repeat, q = result["records_per_s"], result["ratios_per_repeat"], result["quality"]
    rows = []
    for name in DETECTORS:
        exact = q[name].get("mean_pass_exact_match")
        rows.append(
            [
                LABELS[name],
                pm(rates[name], 3),
                "1 (itself)" if name == ILP else ci_text(per_repeat[f"ilp_vs_{name}"]),
                f"{q[name]['mean_pass']:.2f}" + ("" if exact is None else f" ({exact:.2f})"),
                f"{q[name]['unlearned']} / {q[name]['records']}",
                f"{q[name]['agreement_with_ilp']:.2f}",
            ]
        )
    head = result["speedup_vs_best_naive"]
    lines = [
        f"`python -m bench.ilp_detect` ({result['model']}, {result['records']} records, "
        f"{result['threads']} CPU thread, {result['repeats']} repetitions {result['order']}; "
        f"8 candidate answers per record, 4 options, BoN-5 on 3 seeds; the previous baseline on "
        f"the first {result['loop_records']} records{contention(result)}). records/s: mean ± "
        "sample std over repetitions; speed-up: geometric mean [95 % t interval on the log] of "
        "the per-repetition ratios. Mean pass rate (in brackets: strict exact match of the free "
        "text), unlearned count and agreement with ILP's unlearned verdicts from the last "
        "repetition. Per-record scoring gives the same option probabilities as ILP (largest "
        f"difference {q['per_record_scoring']['max_gold_prob_difference_vs_ilp']:.1g}); its "
        "verdicts differ only through the BoN draws.",
        "",
        table(
            ["detector", "records/s", "ILP speed-up", "mean pass", "unlearned", "agreement"], rows
        ),
        "",
        f"Against the best naive detector that performs the task ({LABELS[result['best_naive']]}): "
        f"**{head['geometric_mean']:.1f}×** [{head['ci95'][0]:.1f}, {head['ci95'][1]:.1f}], "
        f"target ≥ {head['target']:.0f}×: **{head['verdict_ge_target']}**.",
    ]
    previous = result.get("previous_sequential_run")
    if previous:
        lines += [
            "",
            f"The previous figure, **{previous['speedup']:.1f}×** ({previous['records']} records, "
            "ILP's detector timed once, then the per-record loop, against a loop whose strict "
            f"exact match scored {previous['loop_mean_pass']:.2f}), is the product of two "
            f"factors measured here: batching the scoring "
            f"({ci_text(per_repeat['batching_of_scoring'])}) and scoring options instead of "
            "generating free text one record at a time "
            f"({ci_text(per_repeat['scoring_vs_per_record_generation'])}); re-measured "
            "interleaved, ILP vs that loop is "
            f"{ci_text(per_repeat['ilp_vs_per_record_generation'])}. Most of it was the "
            "second factor: a slower way of doing the task, not batching.",
        ]
    return "\n".join(lines)


def contention(result: dict) -> str:
    """How busy the machine was (the 1-minute load average before and after), when recorded."""
    if "load_average_1min" not in result:
        return ""
    before, after = result["load_average_1min"]
    return f"; {result['seconds'] / 60:.0f} min, load average {before:.1f} → {after:.1f}"


def write_section(result: dict) -> None:
    from experiments.report import replace_section

    replace_section(RESULTS / "ilp.md", "ilp_detect", page_section(result))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=["smollm2", "tiny"], default="smollm2")
    parser.add_argument("--records", type=int, default=16)
    parser.add_argument("--loop-records", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--render", action="store_true", help="rewrite the page from the JSON")
    args = parser.parse_args()
    path = RESULTS / f"ilp_detect_bench{'' if args.model == 'smollm2' else '_' + args.model}.json"
    if args.render:
        result = derive(json.loads(path.read_text()))
        write_json(path, result)
        write_section(result)
        return
    torch.set_num_threads(args.threads)
    model, tokenizer = load(args.model)
    questions = mcq.build_questions(records(args.records), pool_size=8, seed=0)
    measured = measure(model, tokenizer, questions, args.loop_records, args.repeats)
    result = derive(raw_run(measured, args, previous_run(path)))
    print(json.dumps(result["speedup_vs_best_naive"], indent=2))
    write_json(path, result)
    if args.model == "smollm2":
        write_section(result)


if __name__ == "__main__":
    main()
