"""File I/O with the project's error contract: bad input names file, line and field; outputs are
written to a temporary sibling and renamed, so a failed step never leaves half-written files."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


class ProjectError(Exception):
    """Bad user input or configuration. The CLI prints it on one line and exits 2."""

    def __init__(
        self,
        message: str,
        *,
        file: str | os.PathLike | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.file, self.line, self.field, self.message = file, line, field, message
        where = ""
        if file is not None:
            where = f"{file}" + (f":{line}" if line is not None else "")
        if field is not None:
            where += f" [{field}]" if where else f"[{field}]"
        super().__init__(f"{where}: {message}" if where else message)


def first_few(items: Iterable[object], limit: int = 10) -> str:
    """`a; b; c` naming the first `limit` items, then how many more: one error line can report
    every bad item of an input without growing without bound."""
    named = [str(item) for item in items]
    more = f"; and {len(named) - limit} more" if len(named) > limit else ""
    return "; ".join(named[:limit]) + more


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read one JSON object per line; blank lines are skipped, anything else malformed raises."""
    return [record for _, record in read_numbered_jsonl(path)]


def read_numbered_jsonl(path: str | os.PathLike) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a UTF-8 JSONL file (a BOM is allowed)."""
    path = Path(path)
    if not path.is_file():
        raise ProjectError("file not found", file=path)
    records = []
    with path.open("rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            line = _decode_utf8(raw, path, line_number)
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ProjectError(
                    f"malformed JSON ({error.msg})", file=path, line=line_number
                ) from None
            if not isinstance(record, dict):
                raise ProjectError("expected a JSON object", file=path, line=line_number)
            records.append((line_number, record))
    return records


def _decode_utf8(raw: bytes, path: Path, line_number: int) -> str:
    # bytes, decoded line by line, so that a bad byte is reported at its line, not as a traceback
    try:
        return raw.decode("utf-8-sig" if line_number == 1 else "utf-8")
    except UnicodeDecodeError as error:
        raise ProjectError(
            f"not UTF-8 text (byte 0x{raw[error.start]:02x} at column {error.start + 1}); "
            "save the file as UTF-8",
            file=path,
            line=line_number,
        ) from None


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `target` (file or directory); rename it into place on success.

    On error the temporary is removed and an existing `target` is left untouched."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent)) / target.name
    try:
        yield tmp
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp.parent, ignore_errors=True)


def write_jsonl(path: str | os.PathLike, records: Iterable[dict[str, Any]]) -> None:
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def write_json(path: str | os.PathLike, payload: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProjectError("file not found", file=path) from None
    except json.JSONDecodeError as error:
        raise ProjectError(f"malformed JSON ({error.msg})", file=path, line=error.lineno) from None
