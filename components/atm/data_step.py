"""atm_data: the retrieval corpus and the questions, validated, then written.

    python -m components.atm data --out data/atm --reports reports/atm/data

Outputs in `out_dir`: corpus.jsonl (`id`, `title`, `text`), train.jsonl, dev.jsonl and
test.jsonl (`id`, `question`, `answers`, `gold`: the ids of the documents that state the answer,
`meta`), corpus.txt (the tiny base's pretraining text: every document once and the popular
people's bios repeated, what a generator may know without reading), tokenizer/ (tiny profile)
and world.json (each relation's values and each person's, for the fabricators). Test questions
are about people never trained on.

The user's data (atm_data.corpus_file and questions_file) replaces the world: a corpus JSONL of
`id`, `title`, `text` and a questions JSONL of `id`, `question`, `answers` (a list of accepted
strings), `split` (train, dev or test) and optional `gold` (document ids). A bad line stops the
stage with its file, line and field, and nothing is written."""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from components.atm import attacker, prompts, world
from components.atm.params import AtmDataParams, AtmDataStep
from components.atm.questions import SPLITS, read_questions
from components.common.cli import path_arguments, step_main, step_parser
from components.common.io import (
    atomic_path,
    write_json,
    write_jsonl,
)
from components.common.params import Profile
from components.common.repro import seed_everything
from components.common.retrieval import Document, read_corpus
from components.common.tracking import step_run

log = logging.getLogger(__name__)
CORPUS_COLUMNS = ["line", "id", "title", "text"]
# the fixed text of the prompts, so the tiny tokenizer has their words as tokens
TEMPLATE_TEXTS = [
    prompts.RAG_INSTRUCTION,
    prompts.CLOSED_INSTRUCTION,
    "Knowledge: Question: TITLE # TEXT",
    attacker.ATTACKER_PROMPT,
    *(text for _, text in world.TRAIN_FABRICATIONS + world.HELDOUT_FABRICATIONS),
]
QUESTION_COLUMNS = ["line", "id", "question", "split"]


def world_data(params: AtmDataParams) -> tuple[list[Document], dict[str, list[dict]], dict]:
    built = world.build_world(
        params.people,
        params.seed,
        params.twin_share,
        params.popular_share,
        params.split_shares,
        params.popular_repeats,
    )
    questions = {
        split: [
            {
                "id": q.id,
                "question": q.text,
                "answers": [q.answer],
                "gold": list(q.gold),
                "meta": {"person": q.person, "relation": q.relation},
            }
            for q in qs
        ]
        for split, qs in built.questions.items()
    }
    payload = {
        "values": {k: list(v) for k, v in built.values.items()},
        "people": [asdict(p) for p in built.people],
        "pretraining": built.pretraining,
    }
    return built.corpus, questions, payload


def all_questions(questions: dict[str, list[dict]]) -> list[tuple[str, dict]]:
    return [(split, q) for split in SPLITS for q in questions[split]]


def expectations(max_chars: int) -> dict[str, list]:
    """The GX suites: the corpus's and the questions'."""
    import great_expectations as gx

    ex = gx.expectations
    limit = {"param": "atm_data.max_text_chars"}
    return {
        "corpus": [
            ex.ExpectTableRowCountToBeBetween(min_value=1),
            ex.ExpectColumnValuesToBeUnique(column="id"),
            ex.ExpectColumnValueLengthsToBeBetween(
                column="text", min_value=1, max_value=max_chars, meta=limit
            ),
        ],
        "questions": [
            ex.ExpectColumnValuesToBeUnique(column="id"),
            ex.ExpectColumnValueLengthsToBeBetween(
                column="question", min_value=1, max_value=max_chars, meta=limit
            ),
            ex.ExpectColumnValuesToBeInSet(column="split", value_set=list(SPLITS)),
        ],
    }


def run(
    params: AtmDataParams, profile: Profile, out_dir: Path, report_dir: Path
) -> dict[str, float]:
    import mlflow

    from components.common.tokenizer import train_bpe_tokenizer
    from components.common.validation import validate_and_report

    seed_everything(params.seed, with_torch=False)
    with step_run("atm_data", profile, params):
        if params.corpus_file is not None:
            corpus = read_corpus(params.corpus_file)
            questions = read_questions(Path(params.questions_file), {d.id for d in corpus})
            payload: dict[str, Any] = {}
            sources = (params.corpus_file, params.questions_file)
        else:
            corpus, questions, payload = world_data(params)
            sources = ("atm:corpus", "atm:questions")
        suites = expectations(params.max_text_chars)
        rows = [{"line": n, **asdict(d)} for n, d in enumerate(corpus, start=1)]
        validate_and_report(
            rows, suites["corpus"], sources[0], report_dir / "corpus.json", "corpus", CORPUS_COLUMNS
        )
        numbered = ((s, n, q) for n, (s, q) in enumerate(all_questions(questions), start=1))
        rows = [
            {"line": q.get("line", n), "id": q["id"], "question": q["question"], "split": s}
            for s, n, q in numbered
        ]
        validate_and_report(
            rows,
            suites["questions"],
            sources[1],
            report_dir / "questions.json",
            "questions",
            QUESTION_COLUMNS,
        )
        with atomic_path(out_dir) as tmp:
            tmp.mkdir()
            write_jsonl(tmp / "corpus.jsonl", [asdict(d) for d in corpus])
            for split in SPLITS:
                write_jsonl(
                    tmp / f"{split}.jsonl",
                    [{k: v for k, v in q.items() if k != "line"} for q in questions[split]],
                )
            lines = payload.pop("pretraining", []) + [d.passage for d in corpus]
            (tmp / "corpus.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
            write_json(tmp / "world.json", payload)
            if profile == "tiny":
                texts = lines + [q["question"] for _, q in all_questions(questions)]
                tokenizer = train_bpe_tokenizer(texts + TEMPLATE_TEXTS, params.tokenizer_vocab_size)
                tokenizer.save_pretrained(str(tmp / "tokenizer"))
        metrics = {"documents": float(len(corpus))}
        metrics |= {f"{split}_questions": float(len(questions[split])) for split in SPLITS}
        mlflow.log_metrics(metrics)
        log.info("atm_data wrote %s: %s", out_dir, metrics)
        return metrics


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("components.atm data", __doc__, AtmDataStep)
    path_arguments(
        parser,
        "outputs",
        out=("data/atm", "corpus.jsonl, train/dev/test.jsonl, corpus.txt, tokenizer, world.json"),
        reports=("reports/atm/data", "the validation results"),
    )
    args = parser.parse_args(argv)
    return step_main(
        "atm_data", args, AtmDataStep, lambda p: run(p.atm_data, p.profile, args.out, args.reports)
    )
