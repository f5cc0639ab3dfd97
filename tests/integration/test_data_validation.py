"""User JSONL through the real loader and the real Great Expectations suite: each kind of bad
input fails with file, line and field named, and no dataset is written."""

import json

import pytest

from components.common.io import ProjectError, read_json
from components.common.validation import DataValidationError, sft_expectations, validate_records
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


def prepare(tmp_path, path, **settings):
    settings = {"tasks": ("qa",), "eval_per_task": 1, **settings}
    params = DataPrepParams(source="user", user_train=str(path), **settings)
    return run(params, "hf", tmp_path / "prepared", tmp_path / "reports")


def good(i):
    return {**GOOD, "id": f"r{i}", "prompt": f"What is {i}+{i}?", "response": str(2 * i)}


@pytest.mark.parametrize(
    ("bad_line", "field", "message"),
    [
        ('{"id": "x", "task": "qa", "prompt": "p", ', None, "malformed JSON"),
        ({"id": "x", "task": "qa", "prompt": "p"}, "response", "Field required"),
        ({"id": "x", "task": "qa", "prompt": "p", "response": ""}, "response", "whitespace"),
        ({"id": "x", "task": "qa", "prompt": " \t", "response": "r"}, "prompt", "whitespace"),
        (
            {"id": "x", "task": "qa", "prompt": "p", "response": "r" * 2_000_000},
            "response",
            "2000000 characters, over data_prep.max_response_chars = 512",
        ),
        (
            {"id": "x", "task": "poetry", "prompt": "p", "response": "r"},
            "task",
            "task 'poetry' is not in data_prep.tasks = [qa]",
        ),
        ({"id": "x", "task": "qa", "prompt": "p", "response": 3}, "response", "string"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "messages", "assistant"),
        ({**GOOD, "id": "r1"}, "id", "duplicate id 'r1' (first at line 1)"),
    ],
)
def test_bad_record_names_file_line_field_and_writes_nothing(
    tmp_path, mlflow_uri, bad_line, field, message
):
    path = write_user_file(tmp_path, [good(1), good(2), bad_line, good(3)])
    with pytest.raises(ProjectError) as error:
        prepare(tmp_path, path)
    text = str(error.value)
    assert str(path) in text and error.value.line == 3  # a duplicate id: the second occurrence
    assert error.value.field == field and message in text and len(text) < 300
    assert not (tmp_path / "prepared").exists()


def test_failed_suite_saves_the_gx_result(tmp_path, mlflow_uri):
    path = write_user_file(tmp_path, [good(1), {**good(2), "task": "poetry"}] * 1)
    with pytest.raises(ProjectError):
        prepare(tmp_path, path)
    saved = list((tmp_path / "reports").glob("validation_*.json"))
    assert saved and read_json(saved[0])["success"] is False


def test_empty_file_says_so(tmp_path, mlflow_uri):
    path = write_user_file(tmp_path, [])
    with pytest.raises(ProjectError, match="file is empty"):
        prepare(tmp_path, path)


def test_empty_eval_file_is_named(tmp_path, mlflow_uri):
    train = write_user_file(tmp_path, [good(1), good(2)])
    empty = tmp_path / "eval.jsonl"
    empty.write_text("")
    with pytest.raises(ProjectError, match="file is empty") as error:
        prepare(tmp_path, train, user_eval=str(empty))
    assert error.value.file == empty


def test_suite_says_empty_for_no_records():
    with pytest.raises(DataValidationError, match=r"^synthetic:eval: file is empty \("):
        validate_records([], sft_expectations(["qa"], 8, 8), "synthetic:eval")


def test_eval_file_repeating_training_records_is_an_error(tmp_path, mlflow_uri):
    train = write_user_file(tmp_path, [good(1), good(2), good(3)])
    evaluation = tmp_path / "eval.jsonl"
    evaluation.write_text(
        "\n".join(json.dumps({**good(i), "id": f"e{i}"}) for i in (4, 2, 3)) + "\n"
    )
    for eval_file in (train, evaluation):  # the same file twice, and an overlapping one
        with pytest.raises(ProjectError) as error:
            prepare(tmp_path, train, user_eval=str(eval_file))
        assert str(error.value).startswith(f"{eval_file}:")
        assert f"{train}:" in str(error.value).split(": ", 1)[1]
    assert error.value.line == 2 and "2 of 3 eval records" in str(error.value)
    assert not (tmp_path / "prepared").exists()


def test_readme_recipe_tasks_user_names_the_tasks_key(tmp_path, mlflow_uri):
    """README: -S 'data_prep.tasks=[user]' is for records without a task of their own."""
    path = write_user_file(tmp_path, [good(1), {**good(2), "task": "poetry"}, good(3)])
    with pytest.raises(ProjectError) as error:
        prepare(tmp_path, path, tasks=("user",))
    text = str(error.value)
    assert error.value.line == 1 and error.value.field == "task"
    assert "task 'qa' is not in data_prep.tasks = [user] (all not in it: 'poetry', 'qa')" in text
    untasked = [{k: v for k, v in good(i).items() if k != "task"} for i in range(1, 12)]
    metrics = prepare(tmp_path, write_user_file(tmp_path, untasked), tasks=("user",))
    assert metrics["train_records.user"] + metrics["eval_records"] == 11


def test_huge_values_are_never_echoed_whole(tmp_path, mlflow_uri):
    path = write_user_file(tmp_path, [good(1), {**good(2), "task": "t" * 1_000_000}])
    with pytest.raises(ProjectError) as error:
        prepare(tmp_path, path)
    assert len(str(error.value)) < 300 and "1000000 characters" in str(error.value)


def test_chat_conversations_are_kept(tmp_path, mlflow_uri):
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
    written = [
        json.loads(line)
        for split in ("train", "eval")
        for line in (tmp_path / "prepared" / f"{split}.jsonl").read_text().splitlines()
    ]
    (kept,) = [r for r in written if "messages" in r]
    assert kept["messages"] == chat["messages"] and kept["response"] == "Lima"
    assert kept["prompt"] == "system: Be brief.\nuser: Capital of Peru?"
