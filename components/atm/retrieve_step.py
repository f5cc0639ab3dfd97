"""atm_retrieve: the top-k documents of every question, from the cached dense index and from
BM25, with each retriever's recall@k.

    python -m components.atm retrieve --data data/atm --index data/atm_index \
        --out data/atm_retrieved --reports reports/atm/retrieve

Outputs: `out_dir`/{train,dev,test}.jsonl, each question with `ctxs`, its top-k documents from
`atm_retrieve.retriever` (`id`, `title`, `text`, `score`, `hasanswer`: whether the text contains
an answer), the generator's context; `out_dir`/warmup/{train,eval}.jsonl, the generator's warm-up
SFT records (prompts.py) from the train and dev questions, for the finetune step, and for the
world, `out_dir`/attacker/{train,eval}.jsonl, the attacker's warm-up: template fabrications of the
same questions (attacker.py);
`report_dir`/recall.json and recall.png, recall@k per split and retriever (a hit: a gold document,
or for questions without `gold` a document containing an answer)."""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

from components.atm import world
from components.atm.attacker import seed_records
from components.atm.metrics import has_answer
from components.atm.params import AtmRetrieveStep, RetrieveParams
from components.atm.prompts import warmup_records
from components.common.cli import path_arguments, step_main, step_parser
from components.common.io import atomic_path, read_json, read_jsonl, write_json, write_jsonl
from components.common.params import Profile
from components.common.retrieval import BM25Index, DenseIndex, Hits, read_corpus, recall_at_k
from components.common.tracking import step_run

log = logging.getLogger(__name__)
SPLITS = ("train", "dev", "test")


def hit_sets(questions: list[dict[str, Any]], passages: dict[str, str]) -> list[set[str]]:
    """Per question, the documents that count as a hit: its gold ids, else those with an answer."""
    return [
        set(q["gold"]) or {i for i, text in passages.items() if has_answer(text, q["answers"])}
        for q in questions
    ]


def with_contexts(
    questions: list[dict[str, Any]], hits: Hits, documents: dict[str, Any]
) -> list[dict[str, Any]]:
    return [
        {
            **q,
            "ctxs": [
                {
                    "id": doc_id,
                    "title": documents[doc_id].title,
                    "text": documents[doc_id].text,
                    "score": score,
                    "hasanswer": has_answer(documents[doc_id].text, q["answers"]),
                }
                for doc_id, score in row
            ],
        }
        for q, row in zip(questions, hits, strict=True)
    ]


def run(
    params: RetrieveParams,
    profile: Profile,
    data_dir: Path,
    index_dir: Path,
    out_dir: Path,
    report_dir: Path,
) -> dict[str, float]:
    import mlflow

    from components.common.plots import grouped_bar_plot

    with step_run("atm_retrieve", profile, params):
        corpus = read_corpus(data_dir / "corpus.jsonl")
        documents = {d.id: d for d in corpus}
        passages = {d.id: d.passage for d in corpus}
        retrievers = {"dense": DenseIndex.load(index_dir, corpus), "bm25": BM25Index(corpus)}
        depth = max(params.top_k, *params.recall_at)
        metrics: dict[str, float] = {}
        contexts = {}
        for split in SPLITS:
            questions = read_jsonl(data_dir / f"{split}.jsonl")
            if not questions:
                continue
            wanted = hit_sets(questions, passages)
            for name, retriever in retrievers.items():
                hits = retriever.search([q["question"] for q in questions], depth)
                for k in params.recall_at:
                    metrics[f"{split}.{name}.recall@{k}"] = recall_at_k(hits, wanted, k)
                if name == params.retriever:
                    top = [row[: params.top_k] for row in hits]
                    contexts[split] = with_contexts(questions, top, documents)
        with atomic_path(out_dir) as tmp:
            tmp.mkdir()
            for split, records in contexts.items():
                write_jsonl(tmp / f"{split}.jsonl", records)
            rng = random.Random(params.seed)
            state = read_json(data_dir / "world.json")
            people = {p["name"]: world.Person(**p) for p in state.get("people", [])}
            for split, name in (("train", "train"), ("dev", "eval")):
                questions = contexts.get(split, [])
                warmup = warmup_records(questions, params.closed_book_share, rng)
                write_jsonl(tmp / "warmup" / f"{name}.jsonl", warmup)
                if people:
                    seeds = seed_records(questions, people, state["values"], rng)
                    write_jsonl(tmp / "attacker" / f"{name}.jsonl", seeds)
        write_json(report_dir / "recall.json", metrics)
        png = grouped_bar_plot(
            {
                f"recall@{k}": {
                    name: (metrics[f"test.{name}.recall@{k}"], 0.0) for name in retrievers
                }
                for k in params.recall_at
            },
            report_dir / "recall.png",
            title="Test questions: a gold document among the top k",
            ylabel="recall",
        )
        mlflow.log_metrics({k.replace("@", "_at_"): v for k, v in metrics.items()})
        mlflow.log_artifact(str(png), artifact_path="plots")
        log.info("atm_retrieve wrote %s: %s", out_dir, metrics)
        return metrics


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("components.atm retrieve", __doc__, AtmRetrieveStep)
    path_arguments(
        parser,
        "inputs",
        data=("data/atm", "atm_data's output"),
        index=("data/atm_index", "atm_index's output"),
    )
    path_arguments(
        parser,
        "outputs",
        out=("data/atm_retrieved", "train/dev/test.jsonl with their top-k contexts"),
        reports=("reports/atm/retrieve", "recall.json, recall.png"),
    )
    args = parser.parse_args(argv)
    return step_main(
        "atm_retrieve",
        args,
        AtmRetrieveStep,
        lambda p: run(p.atm_retrieve, p.profile, args.data, args.index, args.out, args.reports),
    )
