"""knowtuning_augment: fine-grained knowledge augmentation (KA), the data half.

    python -m components.knowtuning augment --data data/knowtuning --base models/knowtuning/base \
        --out data/knowtuning_ka --reports reports/knowtuning/augment

For every training answer: its atomic facts (`meta.facts`), each fact's perplexity under the base
model given the question, the hardest `ka.hard_fraction` of them rewritten into fine-grained QA
pairs. Outputs in `out_dir`: train.jsonl (the original records, unless `ka.keep_original` is
false, plus the pairs, task `fine_grained_qa`), eval.jsonl (the SFT monitor's, unchanged) and
knowledge.jsonl (per answer: each fact with its perplexity and whether it was kept, and its
pairs). The finetune step then trains the KA model on train.jsonl from the base model.

With `ka.method: triples` (the paper's v1), train.jsonl is the original records plus, per
answer, a record asking for its knowledge triples (`meta.triples`, or the world's chain); no
perplexity pass, knowledge.jsonl lists each answer's triples."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from components.common.cli import path_arguments, step_main, step_parser
from components.common.io import ProjectError, atomic_path, read_jsonl, write_jsonl
from components.common.params import Profile
from components.common.repro import seed_everything
from components.common.tracking import step_run
from components.common.validation import sft_expectations, validate_and_report
from components.knowtuning import augment
from components.knowtuning.params import KaParams, KnowTuningParams, KnowTuningStep

log = logging.getLogger(__name__)
PAIR_TASK = "fine_grained_qa"


def augment_record(
    record: dict[str, Any], perplexities: list[float], fraction: float, rewrite: augment.Rewriter
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the answer's knowledge entry, its fine-grained SFT records)."""
    facts = record["meta"]["facts"]
    hard = set(augment.hardest(perplexities, fraction))
    pairs = []
    for i in sorted(hard):
        rewritten = rewrite(facts[i], record["prompt"])
        if rewritten is not None:
            question, answer = rewritten
            pairs.append({"q": question, "a": answer, "src_fact": i})
    entry = {
        "qid": record["id"],
        "facts": [
            {"text": f, "ppl": p, "hard": i in hard}
            for i, (f, p) in enumerate(zip(facts, perplexities, strict=True))
        ],
        "fine_grained_qa": pairs,
    }
    sft = [
        {
            "id": f"{record['id']}-fact{pair['src_fact']}",
            "task": PAIR_TASK,
            "stage": 0,
            "prompt": pair["q"],
            "response": pair["a"],
            "meta": {
                **{k: v for k, v in record["meta"].items() if k == "entity"},
                "of": record["id"],
            },
        }
        for pair in pairs
    ]
    return entry, sft


def run(
    params: KnowTuningParams,
    profile: Profile,
    data_dir: Path,
    base_dir: Path,
    out_dir: Path,
    report_dir: Path,
) -> dict[str, float]:
    import mlflow

    ka = params.ka
    seed_everything(params.seed)
    with step_run("knowtuning_augment", profile, params.ka):
        records = read_jsonl(data_dir / "train.jsonl")
        if ka.method == "triples":
            knowledge = [
                {"qid": r["id"], "triples": record_triples(r, data_dir / "train.jsonl")}
                for r in records
            ]
            pairs = [
                augment.triples_record(r, k["triples"])
                for r, k in zip(records, knowledge, strict=True)
            ]
        else:
            knowledge, pairs = fine_grained(records, base_dir, ka)
        train = (records if ka.keep_original else []) + pairs
        expectations = sft_expectations(
            sorted({r["task"] for r in train}), 10_000, 10_000, section="knowtuning.ka"
        )
        numbered = [{"line": n, **r} for n, r in enumerate(train, start=1)]
        validate_and_report(numbered, expectations, "knowtuning:ka", report_dir / "ka.json")
        with atomic_path(out_dir) as tmp:
            tmp.mkdir()
            write_jsonl(tmp / "train.jsonl", train)
            write_jsonl(tmp / "knowledge.jsonl", knowledge)
            shutil.copy(data_dir / "eval.jsonl", tmp / "eval.jsonl")
        metrics = {
            "answers": float(len(records)),
            "augmented_records": float(len(pairs)),
            "train_records": float(len(train)),
        }
        if ka.method == "fine_grained":
            metrics |= _perplexity_report(knowledge, report_dir)
        mlflow.log_metrics(metrics)
        log.info("knowtuning_augment wrote %s: %s", out_dir, metrics)
        return metrics


def fine_grained(
    records: list[dict[str, Any]], base_dir: Path, ka: KaParams
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """v3's KA over every training answer: (knowledge entries, fine-grained SFT records)."""
    from components.common.models import load_causal_lm

    model, tokenizer = load_causal_lm(base_dir)
    rewriters = {
        "template": lambda r: augment.template_rewriter(r["meta"].get("entity", "")),
        "generation": lambda r: augment.generation_rewriter(model, tokenizer),
    }
    knowledge, pairs = [], []
    for record in records:
        perplexities = augment.fact_perplexity(
            model, tokenizer, record["prompt"], record["meta"]["facts"], ka.max_length
        )
        rewrite = rewriters[ka.rewriter](record)
        entry, sft = augment_record(record, perplexities, ka.hard_fraction, rewrite)
        knowledge.append(entry)
        pairs.extend(sft)
    return knowledge, pairs


def record_triples(record: dict[str, Any], source: Path) -> list[list[str]]:
    """The answer's knowledge triples: the user's `meta.triples`, else the world's chain as
    (antecedent, attribute, value)."""
    meta = record["meta"]
    if "triples" in meta:
        return meta["triples"]
    if "chain" in meta:
        return [[prev, attribute, value] for attribute, prev, value in meta["chain"]]
    raise ProjectError(
        f"record {record['id']!r} has no triples (ka.method: triples needs them)",
        file=source,
        field="meta.triples",
    )


def _perplexity_report(knowledge: list[dict[str, Any]], report_dir: Path) -> dict[str, float]:
    """Mean fact perplexity by position in the answer (a PNG, logged) and the summary metrics."""
    import mlflow
    import numpy as np

    from components.common.plots import bar_plot

    sums: dict[int, list[float]] = {}
    for entry in knowledge:
        for i, fact in enumerate(entry["facts"]):
            sums.setdefault(i, []).append(fact["ppl"])
    png = bar_plot(
        {f"fact {i + 1}": sum(v) / len(v) for i, v in sorted(sums.items())},
        report_dir / "perplexity_by_position.png",
        title="Mean fact perplexity under the base, by position in the answer",
        ylabel="perplexity",
    )
    mlflow.log_artifact(str(png))
    kept = [f["ppl"] for e in knowledge for f in e["facts"] if f["hard"]]
    return {
        "facts": float(sum(len(e["facts"]) for e in knowledge)),
        "kept_fact_ppl_mean": float(np.mean(kept)) if kept else 0.0,
        "fact_ppl_mean": float(np.mean([f["ppl"] for e in knowledge for f in e["facts"]])),
    }


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("components.knowtuning augment", __doc__, KnowTuningStep)
    path_arguments(
        parser,
        "inputs",
        data=("data/knowtuning", "knowtuning_data's output"),
        base=("models/knowtuning/base", "the base model (perplexity; generation rewriter)"),
    )
    path_arguments(
        parser,
        "outputs",
        out=("data/knowtuning_ka", "train.jsonl (originals + pairs), eval.jsonl, knowledge.jsonl"),
        reports=("reports/knowtuning/augment", "validation, perplexity by fact position"),
    )
    args = parser.parse_args(argv)
    return step_main(
        "knowtuning_augment",
        args,
        KnowTuningStep,
        lambda p: run(p.knowtuning, p.profile, args.data, args.base, args.out, args.reports),
    )
