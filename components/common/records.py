"""The SFT record contract and the loader for users' own JSONL files.

A record is `{id, task, stage, prompt, response, meta}`. User files may instead carry chat
`messages` whose last one is the assistant's (the response). One user turn becomes a plain
prompt/response; a longer conversation (a system turn, earlier turns) is kept whole in the
record's `messages`, which the SFT tokenisation renders with the tokenizer's chat template
(`common.models.render_record_prompt`), and its `prompt` is the plain `role: content` rendering of
the turns before the response (what a tokenizer without a chat template sees). Every structural
problem names the file, the line and the field."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from components.common.io import ProjectError, read_numbered_jsonl

ROLES = ("system", "user", "assistant")


class SFTRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    id: str
    task: str
    stage: int = 0
    prompt: str
    response: str
    meta: dict[str, Any] = {}
    messages: list[dict[str, str]] | None = None


def load_user_records(path: str | os.PathLike, default_task: str = "user") -> list[dict[str, Any]]:
    """Read a user's JSONL into validated records; `line` is kept for later error messages."""
    path = Path(path)
    numbered = read_numbered_jsonl(path)
    if not numbered:
        raise ProjectError("file is empty", file=path)
    return [_record(dict(raw), path, line, default_task) for line, raw in numbered]


def _record(raw: dict[str, Any], path: Path, line: int, default_task: str) -> dict[str, Any]:
    if "messages" in raw:
        if "prompt" in raw or "response" in raw:
            raise ProjectError(
                "give either messages or prompt and response",
                file=path,
                line=line,
                field="messages",
            )
        raw.update(_from_messages(raw.pop("messages"), path, line))
    raw.setdefault("id", f"{path.stem}-{line}")
    raw.setdefault("task", default_task)
    try:
        record = SFTRecord.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise ProjectError(first["msg"], file=path, line=line, field=field) from None
    for field in ("prompt", "response"):
        if not getattr(record, field).strip():
            raise ProjectError("empty or whitespace only", file=path, line=line, field=field)
    return {**record.model_dump(exclude_none=True), "line": line}


def _from_messages(messages: Any, path: Path, line: int) -> dict[str, Any]:
    """prompt and response of a chat record, and the conversation itself when it is more than
    one user turn (so that no turn is dropped)."""
    turns = _checked_turns(messages, path, line)
    context, response = turns[:-1], turns[-1]["content"]
    if len(context) == 1:
        return {"prompt": context[0]["content"], "response": response}
    return {"prompt": _plain_conversation(context), "response": response, "messages": turns}


def _plain_conversation(turns: list[dict[str, str]]) -> str:
    return "\n".join(f"{turn['role']}: {turn['content']}" for turn in turns)


def _checked_turns(messages: Any, path: Path, line: int) -> list[dict[str, str]]:
    def fail(message: str, field: str = "messages") -> ProjectError:
        return ProjectError(message, file=path, line=line, field=field)

    if not isinstance(messages, list) or len(messages) < 2:
        raise fail("needs at least a user and an assistant message")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            raise fail("each message needs a string content", f"messages[{index}].content")
        if not message["content"].strip():
            raise fail("empty or whitespace only", f"messages[{index}].content")
        if message.get("role") not in ROLES:
            raise fail("role must be system, user or assistant", f"messages[{index}].role")
        if message["role"] == "system" and index > 0:
            raise fail("a system message may only come first", f"messages[{index}].role")
    if messages[-1]["role"] != "assistant":
        raise fail(
            "the last message must be the assistant's", f"messages[{len(messages) - 1}].role"
        )
    if messages[-2]["role"] != "user":
        raise fail(
            "the assistant's answer must follow a user message",
            f"messages[{len(messages) - 2}].role",
        )
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def check_no_overlap(
    train: list[dict[str, Any]], evaluation: list[dict[str, Any]], train_file: str, eval_file: str
) -> None:
    """Eval records that repeat a training record's (prompt, response) measure memory of the
    training data, not what was learned: they are an error, named at the first such eval line."""
    trained: dict[tuple[str, str], int] = {}
    for record in train:
        trained.setdefault((record["prompt"], record["response"]), record["line"])
    repeats = [r for r in evaluation if (r["prompt"], r["response"]) in trained]
    if repeats:
        first = repeats[0]
        train_line = trained[first["prompt"], first["response"]]
        raise ProjectError(
            f"same prompt and response as {train_file}:{train_line}"
            f" ({len(repeats)} of {len(evaluation)} eval records repeat a training record)",
            file=eval_file,
            line=first["line"],
            field="prompt",
        )
