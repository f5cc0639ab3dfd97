"""The user-record loader and the split checks of data_prep, without Great Expectations."""

import copy
import json

import pytest

from components.common.io import ProjectError
from components.common.models import render_record_prompt
from components.common.records import check_no_overlap, load_user_records
from components.common.sft import IGNORE_INDEX, encode_record
from components.common.tokenizer import train_bpe_tokenizer
from components.data_prep.params import DataPrepParams
from components.data_prep.step import hold_out

CHAT = [
    {"role": "system", "content": "Answer in one word."},
    {"role": "user", "content": "Capital of France?"},
    {"role": "assistant", "content": "Paris"},
    {"role": "user", "content": "And of Peru?"},
    {"role": "assistant", "content": "Lima"},
]


def write_lines(tmp_path, lines, name="user.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def qa(i):
    return {"prompt": f"What is {i}+{i}?", "response": str(2 * i)}


@pytest.mark.parametrize("field", ["prompt", "response"])
def test_whitespace_only_text_is_rejected_at_its_line(tmp_path, field):
    path = write_lines(tmp_path, [qa(1), {**qa(2), field: " \t\n "}])
    with pytest.raises(ProjectError) as error:
        load_user_records(path)
    assert (error.value.file, error.value.line, error.value.field) == (path, 2, field)
    assert "whitespace" in str(error.value)


def test_whitespace_only_chat_turn_is_rejected(tmp_path):
    chat = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "  "}]
    path = write_lines(tmp_path, [{"messages": chat}])
    with pytest.raises(ProjectError) as error:
        load_user_records(path)
    assert error.value.line == 1 and error.value.field == "messages[1].content"


def test_utf8_bom_is_accepted(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + (json.dumps(qa(1)) + "\n").encode())
    assert load_user_records(path)[0]["prompt"] == "What is 1+1?"


def test_non_utf8_file_names_the_file_and_line(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(
        (json.dumps(qa(1)) + "\n").encode()
        + '{"prompt": "café", "response": "r"}\n'.encode("cp1252")
    )
    with pytest.raises(ProjectError) as error:
        load_user_records(path)
    assert error.value.file == path and error.value.line == 2 and "UTF-8" in str(error.value)


def test_line_numbers_survive_unicode_line_separators(tmp_path):
    # U+2028 is legal unescaped inside a JSON string; it must not shift the line numbers
    path = tmp_path / "sep.jsonl"
    lines = [json.dumps({**qa(1), "prompt": "a\u2028b"}, ensure_ascii=False), "", json.dumps(qa(2))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert [r["line"] for r in load_user_records(path)] == [1, 3]


@pytest.mark.parametrize("content", ["", "\n\n"])
def test_empty_file_says_so(tmp_path, content):
    path = tmp_path / "empty.jsonl"
    path.write_text(content)
    with pytest.raises(ProjectError, match="file is empty") as error:
        load_user_records(path)
    assert error.value.file == path


def test_single_turn_chat_is_a_plain_record(tmp_path):
    chat = [
        {"role": "user", "content": "Capital of Peru?"},
        {"role": "assistant", "content": "Lima"},
    ]
    (record,) = load_user_records(write_lines(tmp_path, [{"messages": chat}]))
    assert (record["prompt"], record["response"]) == ("Capital of Peru?", "Lima")
    assert "messages" not in record


def test_a_conversation_is_kept_whole(tmp_path):
    (record,) = load_user_records(write_lines(tmp_path, [{"messages": CHAT}]))
    assert record["messages"] == CHAT and record["response"] == "Lima"
    assert record["prompt"] == (
        "system: Answer in one word.\nuser: Capital of France?\n"
        "assistant: Paris\nuser: And of Peru?"
    )


@pytest.mark.parametrize(
    ("messages", "field"),
    [
        ([CHAT[1], CHAT[0], CHAT[2]], "messages[1].role"),  # a system turn after the first
        ([CHAT[1], CHAT[2], CHAT[2]], "messages[1].role"),  # two assistant turns in a row
        ([CHAT[1], {"role": "tool", "content": "x"}, CHAT[2]], "messages[1].role"),
        ([CHAT[1]], "messages"),
    ],
)
def test_unsupported_conversations_are_rejected(tmp_path, messages, field):
    with pytest.raises(ProjectError) as error:
        load_user_records(write_lines(tmp_path, [qa(1), {"messages": messages}]))
    assert error.value.line == 2 and error.value.field == field


def test_messages_and_prompt_together_are_rejected(tmp_path):
    with pytest.raises(ProjectError, match="either messages or prompt") as error:
        load_user_records(write_lines(tmp_path, [{"prompt": "shadowed", "messages": CHAT}]))
    assert error.value.line == 1 and error.value.field == "messages"


@pytest.fixture(scope="module")
def tokenizer():
    texts = [f"{m['role']}: {m['content']}" for m in CHAT] * 4
    return train_bpe_tokenizer(texts, vocab_size=300)


def test_conversation_loss_is_on_the_last_assistant_turn_only(tmp_path, tokenizer):
    (record,) = load_user_records(write_lines(tmp_path, [{"messages": CHAT}]))
    features = encode_record(tokenizer, record, max_length=256)
    context = [
        t for t, label in zip(features["input_ids"], features["labels"], strict=True) if label < 0
    ]
    learned = [label for label in features["labels"] if label != IGNORE_INDEX]
    assert tokenizer.decode(context) == record["prompt"] + "\n"  # no template: plain rendering
    assert tokenizer.decode(learned[:-1]) == "Lima" and learned[-1] == tokenizer.eos_token_id


def test_conversation_goes_through_the_chat_template(tmp_path, tokenizer):
    (record,) = load_user_records(write_lines(tmp_path, [{"messages": CHAT}]))
    chat_tokenizer = copy.deepcopy(tokenizer)
    chat_tokenizer.chat_template = CHAT_TEMPLATE
    assert render_record_prompt(chat_tokenizer, record) == RENDERED_CHAT


CHAT_TEMPLATE = (
    "{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}"
)
RENDERED_CHAT = (
    "<system>Answer in one word.\n<user>Capital of France?\n<assistant>Paris\n"
    "<user>And of Peru?\n<assistant>"
)


def test_evaluation_and_ilp_see_a_chat_record_as_it_was_trained(tmp_path, tokenizer):
    """Evaluation's greedy answers and ILP's questions render the whole conversation (system
    turn included) through the template, as fine-tuning did, not the flattened `prompt`."""
    import torch

    from components.common.models import build_tiny_model
    from components.common.params import TinyModelParams
    from components.common.sft import greedy_record_answers
    from components.ilp_diagnosis.mcq import build_questions

    (record,) = load_user_records(write_lines(tmp_path, [{"messages": CHAT}]))
    chat_tokenizer = copy.deepcopy(tokenizer)
    chat_tokenizer.chat_template = CHAT_TEMPLATE
    (question,) = build_questions([{**record, "id": "r1", "task": "user"}], 5, seed=0)
    assert question.rendered(chat_tokenizer) == RENDERED_CHAT

    torch.manual_seed(0)
    model = build_tiny_model(TinyModelParams(hidden_size=16, intermediate_size=32), tokenizer)
    seen: list[str] = []
    model.register_forward_pre_hook(
        lambda _, args, kwargs: seen.append(chat_tokenizer.decode(kwargs["input_ids"][0])),
        with_kwargs=True,
    )
    greedy_record_answers(model, chat_tokenizer, [record], max_new_tokens=1, batch_size=1)
    assert seen[0] == RENDERED_CHAT


def numbered(records):
    return [{**r, "line": n} for n, r in enumerate(records, start=1)]


def test_eval_repeating_training_data_names_both_files_and_the_eval_line():
    train, evaluation = numbered([qa(1), qa(2), qa(3)]), numbered([qa(4), qa(2), qa(3)])
    with pytest.raises(ProjectError) as error:
        check_no_overlap(train, evaluation, "train.jsonl", "eval.jsonl")
    assert (error.value.file, error.value.line) == ("eval.jsonl", 2)
    assert "train.jsonl:2" in str(error.value) and "2 of 3" in str(error.value)


def test_disjoint_splits_pass():
    check_no_overlap(numbered([qa(1)]), numbered([qa(2)]), "train.jsonl", "eval.jsonl")


def test_hold_out_never_splits_a_repeated_record():
    records = numbered([qa(i % 5) for i in range(40)] + [qa(100 + i) for i in range(10)])
    train, evaluation = hold_out(records, DataPrepParams(eval_per_task=4))
    assert len(evaluation) == 4 and len(train) == 46
    check_no_overlap(train, evaluation, "user.jsonl", "user.jsonl")
