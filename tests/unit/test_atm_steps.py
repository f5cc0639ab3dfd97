"""ATM's data, index and retrieve steps: the user's files rejected with file, line and field
(nothing written), and the three steps chained on a small world with the real MiniLM and BM25."""

from __future__ import annotations

import pytest

from components.atm import data_step, index_step, retrieve_step
from components.atm.params import AtmDataParams, RetrieveParams
from components.common.io import ProjectError, read_json, read_jsonl, write_jsonl

CORPUS = [{"id": "d1", "title": "A", "text": "Kobami plays the harp."}]


@pytest.mark.parametrize(
    ("question", "field"),
    [
        ({"id": "q2", "question": "Who?", "answers": [], "split": "test"}, "answers"),
        ({"id": "q2", "question": "Who?", "answers": ["x"], "split": "eval"}, "split"),
        (
            {"id": "q2", "question": "Who?", "answers": ["x"], "split": "test", "gold": ["d9"]},
            "gold",
        ),
        ({"id": "q2", "question": " ", "answers": ["x"], "split": "test"}, "question"),
    ],
)
def test_bad_user_question_names_file_line_field_and_writes_nothing(
    tmp_path, mlflow_uri, question, field
):
    write_jsonl(tmp_path / "corpus.jsonl", CORPUS)
    good = {"id": "q1", "question": "What does Kobami play?", "answers": ["harp"], "split": "train"}
    write_jsonl(tmp_path / "questions.jsonl", [good, question])
    params = AtmDataParams(
        corpus_file=str(tmp_path / "corpus.jsonl"),
        questions_file=str(tmp_path / "questions.jsonl"),
    )
    with pytest.raises(ProjectError, match=rf"questions.jsonl:2 \[{field}\]"):
        data_step.run(params, "tiny", tmp_path / "out", tmp_path / "reports")
    assert not (tmp_path / "out").exists()


def test_data_index_retrieve_on_a_small_world(tmp_path, mlflow_uri):
    data, index, out = tmp_path / "data", tmp_path / "index", tmp_path / "retrieved"
    data_step.run(AtmDataParams(people=12), "tiny", data, tmp_path / "r")
    params = RetrieveParams(top_k=3, recall_at=(1, 3))
    assert index_step.run(params, "tiny", data, index)["documents"] == 24
    metrics = retrieve_step.run(params, "tiny", data, index, out, tmp_path / "r")
    test = read_jsonl(out / "test.jsonl")
    assert test and all(len(q["ctxs"]) == 3 for q in test)
    for q in test:  # hasanswer is exactly "the text states an answer"
        assert all(c["hasanswer"] == (q["answers"][0] in c["text"]) for c in q["ctxs"])
    for name in ("dense", "bm25"):
        assert 0 <= metrics[f"test.{name}.recall@1"] <= metrics[f"test.{name}.recall@3"] <= 1
    assert read_json(tmp_path / "r/recall.json") == metrics
    assert (tmp_path / "r/recall.png").is_file()
    warmup = read_jsonl(out / "warmup/train.jsonl")
    assert len(warmup) == len(read_jsonl(data / "train.jsonl"))
    assert {r["task"] for r in warmup} <= {"rag_qa", "closed_book"}
    assert len(read_jsonl(out / "attacker/train.jsonl")) == len(warmup)
    assert (data / "tokenizer").is_dir() and (data / "corpus.txt").stat().st_size > 0
