"""The SFT record contract and the loader for users' own JSONL files.

A record is `{id, task, stage, prompt, response, meta}`. User files may instead carry chat
`messages` (the last one from the assistant is the response); they are converted on load. Every
structural problem names the file, the line and the field."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from components.common.io import ProjectError, read_jsonl


class SFTRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    id: str
    task: str
    stage: int = 0
    prompt: str
    response: str
    meta: dict[str, Any] = {}


def _from_messages(messages: Any, path: Path, line: int) -> tuple[str, str]:
    if not isinstance(messages, list) or len(messages) < 2:
        raise ProjectError(
            "needs at least a user and an assistant message", file=path, line=line, field="messages"
        )
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            raise ProjectError(
                "each message needs a string content",
                file=path,
                line=line,
                field=f"messages[{index}].content",
            )
        if message.get("role") not in {"system", "user", "assistant"}:
            raise ProjectError(
                "role must be system, user or assistant",
                file=path,
                line=line,
                field=f"messages[{index}].role",
            )
    if messages[-1]["role"] != "assistant":
        raise ProjectError(
            "the last message must be the assistant's",
            file=path,
            line=line,
            field=f"messages[{len(messages) - 1}].role",
        )
    prompt = "\n".join(m["content"] for m in messages[:-1] if m["role"] != "assistant")
    return prompt, messages[-1]["content"]


def load_user_records(path: str | os.PathLike, default_task: str = "user") -> list[dict[str, Any]]:
    """Read a user's JSONL into validated records; `line` is kept for later error messages."""
    path = Path(path)
    records = []
    for line, raw in _numbered(path):
        raw = dict(raw)
        if "messages" in raw:
            raw["prompt"], raw["response"] = _from_messages(raw.pop("messages"), path, line)
        raw.setdefault("id", f"{path.stem}-{line}")
        raw.setdefault("task", default_task)
        try:
            record = SFTRecord.model_validate(raw)
        except ValidationError as error:
            first = error.errors()[0]
            field = ".".join(str(part) for part in first["loc"])
            raise ProjectError(first["msg"], file=path, line=line, field=field) from None
        records.append({**record.model_dump(), "line": line})
    return records


def _numbered(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) pairs: read_jsonl skips blank lines, so number them ourselves."""
    objects = read_jsonl(path)
    lines = [
        n for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if text.strip()
    ]
    return list(zip(lines, objects, strict=True))
