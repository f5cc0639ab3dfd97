"""grm_data: the reasoning benchmark's splits, validated, then written all at once.

    python -m components.grm_scorer data --out data/reasoning --reports reports/grm/data

Outputs in `out_dir`: train.jsonl (policy), scorer.jsonl (scorer paths), eval.jsonl (routes), each
with a direct and a CoT record per question, and tokenizer/ (tiny profile: a BPE trained on the
records, with single digits). Held-out splits are drawn first and take at most a quarter of any
k's problem space. No question appears in two splits, except sums of at most `table_max_terms`
terms: only 81 sums of two digits exist, they are addition-table facts (every CoT step uses them),
so training may contain all of them and k = 2 measures recall rather than generalisation."""

from __future__ import annotations

import logging
import random
from collections import Counter
from pathlib import Path
from typing import Any

from components.common.cli import path_arguments, step_main, step_parser
from components.common.io import atomic_path, write_jsonl
from components.common.params import Profile
from components.common.repro import seed_everything
from components.common.tracking import step_run
from components.common.validation import validate_and_report
from components.grm_scorer import reasoning
from components.grm_scorer.params import GrmDataParams, GrmDataStep

log = logging.getLogger(__name__)
SPLITS = ("eval", "scorer", "train")  # drawing order: held-out first
HELD_OUT_SHARE = 0.25  # of each k's problem space, per held-out split


def build_splits(params: GrmDataParams) -> dict[str, list[dict[str, Any]]]:
    rng = random.Random(params.seed)
    seen: set[tuple[int, ...]] = set()
    sizes = {
        "eval": params.eval_questions,
        "scorer": params.scorer_questions,
        "train": params.train_questions,
    }
    splits = {}
    for split in SPLITS:
        if split == "train":  # table facts may repeat held-out questions; nothing else may
            seen = {terms for terms in seen if len(terms) > params.table_max_terms}
        problems = reasoning.make_problems(
            sizes[split],
            params.min_terms,
            params.max_terms,
            params.max_digit,
            rng,
            seen,
            params.judge_fraction,
            max_share=1.0 if split == "train" else HELD_OUT_SHARE,
        )
        splits[split] = reasoning.records_for(problems, split, params.cot_suffix)
    return splits


def run(
    params: GrmDataParams, profile: Profile, out_dir: Path, report_dir: Path
) -> dict[str, float]:
    # MLflow, torch and transformers load here, once params are valid: `--help` needs none
    import mlflow

    from components.common.models import render_prompt
    from components.common.tokenizer import train_bpe_tokenizer

    seed_everything(params.seed)
    with step_run("grm_data", profile, params):
        splits = build_splits(params)
        expectations = reasoning.reasoning_expectations(
            params.max_prompt_chars, params.max_response_chars
        )
        for split, records in splits.items():
            numbered = [{**r, "line": n} for n, r in enumerate(records, start=1)]
            validate_and_report(
                numbered,
                expectations,
                f"reasoning:{split}",
                report_dir / f"validation_{split}.json",
                suite_name="reasoning",
            )

        with atomic_path(out_dir) as tmp:
            tmp.mkdir()
            for split, records in splits.items():
                write_jsonl(tmp / f"{split}.jsonl", records)
            if profile == "tiny":
                texts = [r["prompt"] + "\n" + r["response"] for rs in splits.values() for r in rs]
                tokenizer = train_bpe_tokenizer(texts, params.tokenizer_vocab_size)
                tokenizer.save_pretrained(str(tmp / "tokenizer"))

        metrics: dict[str, float] = {
            f"{split}_questions": len(records) / 2 for split, records in splits.items()
        }
        by_k = Counter(r["meta"]["k"] for r in splits["eval"] if r["meta"]["mode"] == "direct")
        metrics |= {f"eval_questions.k{k}": float(n) for k, n in sorted(by_k.items())}
        if profile == "tiny":
            example = splits["train"][1]
            metrics["cot_example_tokens"] = float(
                len(
                    tokenizer(render_prompt(tokenizer, example["prompt"]) + example["response"])[
                        "input_ids"
                    ]
                )
            )
        mlflow.log_metrics(metrics)
        log.info("grm_data wrote %s: %s", out_dir, metrics)
        return metrics


def main(argv: list[str] | None = None) -> int:
    parser = step_parser(
        "components.grm_scorer data",
        "Write the digit-sum reasoning data (direct, step-by-step and judge targets) and validate "
        "every split with Great Expectations.",
        GrmDataStep,
    )
    path_arguments(
        parser,
        "outputs",
        out=(
            "data/reasoning",
            "the digit-sum questions with direct, step-by-step and judge targets",
        ),
        reports=("reports/grm/data", "the Great Expectations result of every split"),
    )
    args = parser.parse_args(argv)
    return step_main(
        "grm_data", args, GrmDataStep, lambda p: run(p.grm_data, p.profile, args.out, args.reports)
    )
