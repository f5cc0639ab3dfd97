"""The user's questions file (atm_data.questions_file): JSONL of `id`, `question`, `answers` (a
non-empty list of accepted strings), `split` (train, dev or test) and optional `gold` (ids of the
corpus documents that answer it). Read here, apart from the step, so that `pipelines.check` can
check it before any stage runs."""

from __future__ import annotations

from pathlib import Path

from components.common.io import ProjectError, read_numbered_jsonl

SPLITS = ("train", "dev", "test")


def read_questions(path: Path, corpus_ids: set[str]) -> dict[str, list[dict]]:
    """The user's questions by split; each field checked, gold ids looked up in the corpus."""
    questions: dict[str, list[dict]] = {split: [] for split in SPLITS}
    for line, raw in read_numbered_jsonl(path):

        def bad(field: str, message: str, line: int = line) -> ProjectError:
            return ProjectError(message, file=path, line=line, field=field)

        for field in ("id", "question"):
            if not isinstance(raw.get(field), str) or not raw[field].strip():
                raise bad(field, "must be a non-empty string")
        answers = raw.get("answers")
        if not (isinstance(answers, list) and answers and all(isinstance(a, str) for a in answers)):
            raise bad("answers", "must be a non-empty list of strings")
        if raw.get("split") not in SPLITS:
            raise bad("split", f"must be one of {', '.join(SPLITS)}")
        gold = raw.get("gold", [])
        unknown = [g for g in gold if g not in corpus_ids] if isinstance(gold, list) else [gold]
        if unknown:
            raise bad("gold", f"not a corpus id: {unknown[0]!r}")
        questions[raw["split"]].append(
            {k: raw[k] for k in ("id", "question", "answers")}
            | {"gold": gold, "meta": raw.get("meta", {}), "line": line}
        )
    if not questions["train"] or not questions["test"]:
        raise ProjectError("needs train and test questions", file=path, field="split")
    return questions
