"""data_prep: build (or load) the SFT set and the pretraining corpus, validate, then write.

Outputs in `out_dir`: train.jsonl, eval.jsonl, corpus.txt, tokenizer/ (tiny profile only).
Validation results go to `report_dir` whether or not they pass; the dataset is written only after
every split passed, and all at once (one atomic rename of the directory)."""

from __future__ import annotations

import logging
import random
from collections import Counter
from pathlib import Path
from typing import Any

import mlflow

from components.common.io import ProjectError, atomic_path, write_jsonl
from components.common.params import Profile
from components.common.records import check_no_overlap, load_user_records
from components.common.repro import seed_everything
from components.common.tokenizer import train_bpe_tokenizer
from components.common.tracking import step_run
from components.common.validation import sft_expectations, validate_and_report
from components.data_prep import planted, world
from components.data_prep.params import DataPrepParams

log = logging.getLogger(__name__)


def synthetic_splits(params: DataPrepParams) -> tuple[list[dict], list[dict], list[str]]:
    """The synthetic world's (train records, eval records, corpus lines)."""
    rng = random.Random(params.seed)
    entities = world.make_world(params.n_entities, rng)
    corpus = world.pretraining_corpus(entities, params.corpus_repeats, rng)
    examples: dict[str, tuple[list[world.Example], list[world.Example]]] = {}

    seen: set[str] = set()
    for task, make in (("reverse", world.reverse_example), ("add", world.add_example)):
        train = world.unique_examples(make, params.train_per_task.get(task, 0), rng, seen)
        examples[task] = (train, world.unique_examples(make, params.eval_per_task, rng, seen))

    table = list(world.recall_table(params.n_recall_keys, rng).items())
    recall = [world.recall_example(k, v) for k, v in table]
    n_recall = min(params.train_per_task.get("recall", 0), len(recall))
    # memorisation is evaluated on keys that were trained
    examples["recall"] = (
        recall[:n_recall],
        rng.sample(recall[:n_recall], min(n_recall, params.eval_per_task)),
    )
    if "recall_alt" in params.tasks:  # opt-in task: the default data never draws from it
        examples["recall_alt"] = conflicting_recall(table, params, examples["recall"])

    # QA pairs are trained for some entities; eval asks about the others, known only from the corpus
    qa = [world.fact_qa_example(e, a) for e in entities for a in world.ATTRIBUTES]
    rng.shuffle(qa)
    n_qa = min(params.train_per_task.get("fact_qa", 0), len(qa) - params.eval_per_task)
    examples["fact_qa"] = (qa[:n_qa], qa[n_qa : n_qa + params.eval_per_task])

    splits = []
    for split_index, split in enumerate(("train", "eval")):
        records = [
            {
                "id": f"{task}-{split}-{i:05d}",
                "task": task,
                "stage": params.task_stage.get(task, 0),
                "prompt": ex.prompt,
                "response": ex.response,
                "meta": ex.meta,
            }
            for task in params.tasks
            for i, ex in enumerate(examples[task][split_index])
        ]
        rng.shuffle(records)
        splits.append([{**r, "line": n} for n, r in enumerate(records, start=1)])
    return splits[0], splits[1], corpus


def conflicting_recall(
    table: list[tuple[str, str]],
    params: DataPrepParams,
    recall: tuple[list[world.Example], list[world.Example]],
) -> tuple[list[world.Example], list[world.Example]]:
    """`recall_alt`: the keys recall trains (and evaluates), each mapped to another value, so the
    two tasks share an input format and conflict in their outputs (trained on the same keys)."""
    n_alt = min(params.train_per_task.get("recall_alt", 0), len(table))
    alt = world.conflicting_values(dict(table[:n_alt]), params.seed)
    train = [world.recall_alt_example(k, v) for k, v in alt.items()]
    evaluated = [ex.meta["key"] for ex in recall[1] if ex.meta["key"] in alt]
    return train, [world.recall_alt_example(k, alt[k]) for k in evaluated]


def load_user_files(params: DataPrepParams) -> dict[str, tuple[str, list[dict]]]:
    files = {"train": params.user_train}
    if params.user_eval:
        files["eval"] = params.user_eval
    return {split: (str(path), load_user_records(path)) for split, path in files.items()}


def hold_out(records: list[dict], params: DataPrepParams) -> tuple[list[dict], list[dict]]:
    """A deterministic eval slice of a single user file (at most eval_per_task, about 10 %)."""
    counts = Counter((r["prompt"], r["response"]) for r in records)
    # a repeated (prompt, response) stays in train: held out, it would be evaluated on training data
    candidates = [r for r in records if counts[r["prompt"], r["response"]] == 1]
    if not candidates:
        raise ProjectError(
            "every prompt and response is repeated, none can be held out for eval; "
            "give an eval file in data_prep.user_eval",
            file=params.user_train,
        )
    n_eval = min(params.eval_per_task, max(1, len(records) // 10), len(candidates))
    evaluation = random.Random(params.seed).sample(candidates, n_eval)
    held_out = {r["line"] for r in evaluation}
    return [r for r in records if r["line"] not in held_out], evaluation


def run(
    params: DataPrepParams, profile: Profile, out_dir: Path, report_dir: Path
) -> dict[str, Any]:
    seed_everything(params.seed, with_torch=False)  # no torch here: tokenizers, GX, MLflow
    with step_run("data_prep", profile, params):
        if params.source == "user":
            datasets = load_user_files(params)
        else:
            make = planted.planted_splits if params.synthetic == "ilp_planted" else synthetic_splits
            train, evaluation, corpus = make(params)
            datasets = {"train": ("synthetic:train", train), "eval": ("synthetic:eval", evaluation)}

        # validate whole files before the hold-out, so e.g. duplicate ids cannot hide across splits
        expectations = sft_expectations(
            params.tasks, params.max_prompt_chars, params.max_response_chars, section="data_prep"
        )
        for split, (source, records) in datasets.items():
            validate_and_report(
                records, expectations, source, report_dir / f"validation_{split}.json"
            )

        if params.source == "user":
            train = datasets["train"][1]
            evaluation = datasets["eval"][1] if "eval" in datasets else None
            if evaluation is None:
                train, evaluation = hold_out(train, params)
            if not train:
                raise ProjectError(
                    "no training records left after the eval hold-out", file=params.user_train
                )
            eval_file = params.user_eval or params.user_train
            check_no_overlap(train, evaluation, str(params.user_train), str(eval_file))
            corpus = _texts(train)

        with atomic_path(out_dir) as tmp:
            tmp.mkdir()
            write_jsonl(tmp / "train.jsonl", [_strip_line(r) for r in train])
            write_jsonl(tmp / "eval.jsonl", [_strip_line(r) for r in evaluation])
            (tmp / "corpus.txt").write_text("\n".join(corpus) + "\n", encoding="utf-8")
            if profile == "tiny":
                tokenizer = train_bpe_tokenizer(corpus + _texts(train), params.tokenizer_vocab_size)
                tokenizer.save_pretrained(str(tmp / "tokenizer"))

        metrics = {
            "train_records": len(train),
            "eval_records": len(evaluation),
            "corpus_lines": len(corpus),
            **{f"train_records.{t}": sum(r["task"] == t for r in train) for t in params.tasks},
        }
        mlflow.log_metrics(metrics)
        log.info("data_prep wrote %s: %s", out_dir, metrics)
        return metrics


def _strip_line(record: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if key != "line"}


def _texts(records: list[dict[str, Any]]) -> list[str]:
    return [r["prompt"] + "\n" + r["response"] for r in records]
