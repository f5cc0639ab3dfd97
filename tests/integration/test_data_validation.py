"""User JSONL through the real loader and the real Great Expectations suite: each kind of bad
input fails with file, line and field named, and no dataset is written."""

import json

import pytest

from components.common.io import ProjectError, read_json
from components.data_prep.params import DataPrepParams
from components.data_prep.step import run

pytestmark = pytest.mark.integration

GOOD = {"id": "r1", "task": "qa", "prompt": "What is 2+2?", "response": "4"}


def write_user_file(tmp_path, lines):
    path = tmp_path / "user.jsonl"
    path.write_text(
        "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
    )
    return path


def prepare(tmp_path, path):
    params = DataPrepParams(source="user", user_train=str(path), tasks=("qa",), eval_per_task=1)
    return run(params, "hf", tmp_path / "prepared", tmp_path / "reports")


def good(i):
    return {**GOOD, "id": f"r{i}", "prompt": f"What is {i}+{i}?", "response": str(2 * i)}


@pytest.mark.parametrize(
    ("bad_line", "field", "message"),
    [
        ('{"id": "x", "task": "qa", "prompt": "p", ', None, "malformed JSON"),
        ({"id": "x", "task": "qa", "prompt": "p"}, "response", "Field required"),
        ({"id": "x", "task": "qa", "prompt": "p", "response": ""}, "response", "length"),
        ({"id": "x", "task": "poetry", "prompt": "p", "response": "r"}, "task", "in_set"),
        ({"id": "x", "task": "qa", "prompt": "p", "response": 3}, "response", "string"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "messages", "assistant"),
        ({**GOOD, "id": "r1"}, "id", "unique"),
    ],
)
def test_bad_record_names_file_line_field_and_writes_nothing(
    tmp_path, mlflow_uri, bad_line, field, message
):
    path = write_user_file(tmp_path, [good(1), good(2), bad_line, good(3)])
    with pytest.raises(ProjectError) as error:
        prepare(tmp_path, path)
    text = str(error.value)
    assert str(path) in text and error.value.line in (1, 3)  # a duplicate id also flags line 1
    assert error.value.field == field and message in text
    assert not (tmp_path / "prepared").exists()


def test_failed_suite_saves_the_gx_result(tmp_path, mlflow_uri):
    path = write_user_file(tmp_path, [good(1), {**good(2), "task": "poetry"}] * 1)
    with pytest.raises(ProjectError):
        prepare(tmp_path, path)
    saved = list((tmp_path / "reports").glob("validation_*.json"))
    assert saved and read_json(saved[0])["success"] is False


def test_chat_messages_are_converted(tmp_path, mlflow_uri):
    chat = {
        "task": "qa",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Capital of Peru?"},
            {"role": "assistant", "content": "Lima"},
        ],
    }
    path = write_user_file(tmp_path, [good(i) for i in range(1, 12)] + [chat])
    metrics = prepare(tmp_path, path)
    assert metrics["train_records"] + metrics["eval_records"] == 12
    lines = (tmp_path / "prepared" / "train.jsonl").read_text()
    lines += (tmp_path / "prepared" / "eval.jsonl").read_text()
    assert '"prompt": "Be brief.\\nCapital of Peru?", "response": "Lima"' in lines
