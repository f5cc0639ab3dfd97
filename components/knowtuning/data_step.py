"""knowtuning_data: long-form QA records whose answers are lists of facts, validated, then written.

    python -m components.knowtuning data --out data/knowtuning --reports reports/knowtuning/data

Outputs in `out_dir`: train.jsonl (SFT on training entities), eval.jsonl (the SFT monitor's slice
of train), test.jsonl (held-out entities: their facts are only in the corpus), test_unseen.jsonl
(the same entities asked with question phrasings SFT never saw), corpus.txt (documents stating
each entity's facts in shuffled order, some attributes rarer: the tiny base's knowledge) and
tokenizer/ (tiny profile), plus world.json (each attribute's values, for falsification). Every
record's `meta.facts` lists its answer's atomic facts in order; world records add `meta.chain`.

The user's records (knowtuning_data.train_file / test_file: the SFT JSONL format, with optional
`meta.facts`, else the answer split into sentences, and optional `meta.triples`, the answer's
[subject, relation, object] lists for KA's v1 method) replace the world."""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

from components.common.cli import path_arguments, step_main, step_parser
from components.common.io import ProjectError, atomic_path, write_json, write_jsonl
from components.common.params import Profile
from components.common.records import load_user_records
from components.common.repro import seed_everything
from components.common.tracking import step_run
from components.common.validation import sft_expectations, validate_and_report
from components.knowtuning import world
from components.knowtuning.params import KnowTuningDataParams, KnowTuningDataStep

log = logging.getLogger(__name__)
TASK = "knowledge_qa"
SPLITS = ("train", "eval", "test", "test_unseen")


def qa_record(entity: world.Entity, question: str, split: str) -> dict[str, Any]:
    facts = [world.render_fact(f) for f in entity.facts]
    return {
        "id": f"{split}-{entity.name}",
        "task": TASK,
        "stage": 0,
        "prompt": question.format(entity=entity.name),
        "response": " ".join(facts),
        "meta": {
            "entity": entity.name,
            "kind": entity.kind,
            "facts": facts,
            "chain": [[f.attribute, f.prev, f.value] for f in entity.facts],
        },
    }


def world_splits(params: KnowTuningDataParams) -> tuple[dict[str, list[dict]], list[str], dict]:
    """(splits, corpus lines, world.json payload) of the synthetic world."""
    entities = world.make_world(params.entities, params.seed)
    rng = random.Random(params.seed)
    order = rng.sample(entities, len(entities))
    test, train = order[: params.test_entities], order[params.test_entities :]
    attributes = [link.attribute for chain in world.CHAINS.values() for link in chain]
    presence = {attribute: rng.uniform(*params.presence) for attribute in attributes}
    splits = {
        "train": [qa_record(e, world.ANSWER_QUESTION, "train") for e in train],
        "eval": [
            qa_record(e, world.ANSWER_QUESTION, "eval") for e in train[: params.eval_entities]
        ],
        "test": [qa_record(e, world.ANSWER_QUESTION, "test") for e in test],
        "test_unseen": [
            qa_record(e, world.UNSEEN_QUESTIONS[i % len(world.UNSEEN_QUESTIONS)], "test_unseen")
            for i, e in enumerate(test)
        ],
    }
    corpus = world.pretraining_corpus(entities, params.documents, presence, params.seed)
    payload = {"pools": world.value_pools(entities), "presence": presence}
    return splits, corpus, payload


def with_facts(records: list[dict[str, Any]], source: str) -> list[dict[str, Any]]:
    """User records with `meta.facts` checked (a list of non-empty strings) or filled in by
    splitting the answer into sentences."""
    out = []
    for record in records:
        facts = record["meta"].get("facts")
        if facts is None:
            facts = world.split_sentences(record["response"])
        elif not (isinstance(facts, list) and all(isinstance(f, str) and f.strip() for f in facts)):
            raise ProjectError(
                "must be a list of non-empty strings",
                file=source,
                line=record["line"],
                field="meta.facts",
            )
        if not facts:
            raise ProjectError("the answer has no facts", file=source, line=record["line"])
        triples = record["meta"].get("triples")
        if triples is not None and not (
            isinstance(triples, list)
            and triples
            and all(
                isinstance(t, list) and len(t) == 3 and all(isinstance(x, str) for x in t)
                for t in triples
            )
        ):
            raise ProjectError(
                "must be a non-empty list of [subject, relation, object] strings",
                file=source,
                line=record["line"],
                field="meta.triples",
            )
        out.append({**record, "meta": {**record["meta"], "facts": facts}})
    return out


def user_splits(params: KnowTuningDataParams) -> tuple[dict[str, list[dict]], list[str], dict]:
    train = with_facts(load_user_records(params.train_file, TASK), str(params.train_file))
    test = with_facts(load_user_records(params.test_file, TASK), str(params.test_file))
    splits = {"train": train, "eval": train[: params.eval_entities], "test": test}
    corpus = [fact for r in train + test for fact in r["meta"]["facts"]]
    return splits, corpus, {"pools": {}}


def run(
    params: KnowTuningDataParams, profile: Profile, out_dir: Path, report_dir: Path
) -> dict[str, float]:
    import mlflow

    from components.common.tokenizer import train_bpe_tokenizer

    seed_everything(params.seed, with_torch=False)
    with step_run("knowtuning_data", profile, params):
        user = params.train_file is not None
        splits, corpus, payload = user_splits(params) if user else world_splits(params)
        tasks = sorted({r["task"] for records in splits.values() for r in records})
        expectations = sft_expectations(
            tasks, params.max_prompt_chars, params.max_response_chars, section="knowtuning_data"
        )
        for split, records in splits.items():
            numbered = [{"line": n, **r} for n, r in enumerate(records, start=1)]
            source = getattr(params, f"{split}_file", None) or f"knowtuning:{split}"
            validate_and_report(numbered, expectations, source, report_dir / f"{split}.json")
        with atomic_path(out_dir) as tmp:
            tmp.mkdir()
            for split, records in splits.items():
                write_jsonl(tmp / f"{split}.jsonl", [_without_line(r) for r in records])
            write_json(tmp / "world.json", payload)
            (tmp / "corpus.txt").write_text("\n".join(corpus) + "\n", encoding="utf-8")
            if profile == "tiny":
                texts = corpus + [r["prompt"] + "\n" + r["response"] for r in splits["train"]]
                questions = [q.format(entity="X") for q in world.UNSEEN_QUESTIONS]
                tokenizer = train_bpe_tokenizer(texts + questions, params.tokenizer_vocab_size)
                tokenizer.save_pretrained(str(tmp / "tokenizer"))
        metrics = {f"{split}_records": float(len(r)) for split, r in splits.items()}
        metrics["corpus_lines"] = float(len(corpus))
        mlflow.log_metrics(metrics)
        log.info("knowtuning_data wrote %s: %s", out_dir, metrics)
        return metrics


def _without_line(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "line"}


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("components.knowtuning data", __doc__, KnowTuningDataStep)
    path_arguments(
        parser,
        "outputs",
        out=("data/knowtuning", "the splits, world.json, corpus.txt, tokenizer/ (tiny)"),
        reports=("reports/knowtuning/data", "the Great Expectations result of every split"),
    )
    args = parser.parse_args(argv)
    return step_main(
        "knowtuning_data",
        args,
        KnowTuningDataStep,
        lambda p: run(p.knowtuning_data, p.profile, args.out, args.reports),
    )
