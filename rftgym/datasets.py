"""Datasets of prompts in the Fireworks / OpenAI RFT JSONL shape.

Each row is ``{"messages": [...], "ground_truth": ..., <extra fields>}``; the conversation ends
with a user message. Malformed input fails at load time with the file, the line and the problem.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any, Iterable

from rftgym.spaces import OPTIONAL_MESSAGE_KEYS, ROLES


class DatasetError(ValueError):
    """A dataset file or row is malformed; the message names the file, line and problem."""


def _normalize_content(content: Any, where: str, i: int) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts: [{"type": "text", "text": "..."}]
        texts = []
        for part in content:
            if not (isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)):
                raise DatasetError(f"{where}: messages[{i}].content has a non-text part {part!r}")
            texts.append(part["text"])
        return "".join(texts)
    raise DatasetError(
        f"{where}: messages[{i}].content must be a string, got {type(content).__name__}")


def validate_row(row: Any, where: str) -> dict[str, Any]:
    """Check one row and return a normalized copy; ``where`` names its location for errors."""
    if not isinstance(row, dict):
        raise DatasetError(f"{where}: a row must be a JSON object, got {type(row).__name__}")
    if "messages" not in row:
        raise DatasetError(f"{where}: missing required field 'messages'")
    messages = row["messages"]
    if not isinstance(messages, list) or not messages:
        raise DatasetError(f"{where}: 'messages' must be a non-empty list of {{role, content}} objects")
    clean = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise DatasetError(f"{where}: messages[{i}] must be an object, got {type(message).__name__}")
        role = message.get("role")
        if role not in ROLES:
            raise DatasetError(
                f"{where}: messages[{i}] has unknown role {role!r} (expected one of {', '.join(ROLES)})")
        if "content" not in message:
            raise DatasetError(f"{where}: messages[{i}] ({role}) has no 'content'")
        extra = {k: v for k, v in message.items() if k in OPTIONAL_MESSAGE_KEYS}
        unknown = set(message) - {"role", "content", *OPTIONAL_MESSAGE_KEYS}
        if unknown:
            raise DatasetError(f"{where}: messages[{i}] has unknown keys {sorted(unknown)}")
        clean.append({"role": role, "content": _normalize_content(message["content"], where, i), **extra})
    if clean[-1]["role"] != "user":
        raise DatasetError(
            f"{where}: the last message must be from the user (the model replies to it), "
            f"got role {clean[-1]['role']!r}")
    if "task_id" in row and not isinstance(row["task_id"], (str, int)):
        raise DatasetError(f"{where}: 'task_id' must be a string or integer")
    return {**row, "messages": clean}


class Dataset(Sequence):
    """A validated, indexable sequence of rows with lookup by ``task_id``."""

    def __init__(self, rows: Sequence[dict[str, Any]], source: str = "<rows>"):
        self.rows = rows
        self.source = source
        self._by_task_id: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:  # type: ignore[override]
        return self.rows[index]

    def task_id(self, index: int) -> str:
        row = self.rows[index]
        return str(row.get("task_id", row.get("id", index)))

    def index_of(self, task_id: Any) -> int:
        if self._by_task_id is None:
            self._by_task_id = {self.task_id(i): i for i in range(len(self.rows))}
        try:
            return self._by_task_id[str(task_id)]
        except KeyError:
            raise KeyError(f"no row with task_id {task_id!r} in dataset {self.source}") from None

    def __repr__(self) -> str:
        return f"Dataset({self.source}, {len(self)} rows)"


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read and validate a JSONL file of rows; errors name ``file:line``."""
    import jsonlines

    path = os.fspath(path)
    if not os.path.exists(path):
        raise DatasetError(f"{path}: file not found")
    rows: list[dict[str, Any]] = []
    with open(path, "rb") as handle:
        raw_lines = handle.read().splitlines()
    for line_number, raw in enumerate(raw_lines, start=1):
        where = f"{path}:{line_number}"
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DatasetError(f"{where}: not valid UTF-8 ({exc.reason})") from None
        try:
            row = jsonlines.Reader([text], loads=_strict_loads).read()
        except jsonlines.InvalidLineError as exc:
            cause = exc.__cause__ or exc
            raise DatasetError(f"{where}: invalid JSON ({cause})") from None
        rows.append(validate_row(row, where))
    if not rows:
        raise DatasetError(f"{path}: the dataset is empty (no rows)")
    return rows


def _reject_constant(value: str) -> Any:
    raise ValueError(f"{value} is not valid JSON")


def _strict_loads(text: str) -> Any:
    return json.loads(text, parse_constant=_reject_constant)


def load_dataset(source: str | os.PathLike | Iterable[dict[str, Any]] | Dataset) -> Dataset:
    """Load rows from a JSONL path, a list of row dicts, or return a ``Dataset`` as is."""
    if isinstance(source, Dataset):
        return source
    if isinstance(source, (str, os.PathLike)):
        return Dataset(read_jsonl(source), source=os.fspath(source))
    if isinstance(source, dict):
        raise DatasetError("dataset must be a path or a list of rows, got a single dict")
    rows = [validate_row(row, f"<rows>[{i}]") for i, row in enumerate(source)]
    if not rows:
        raise DatasetError("<rows>: the dataset is empty (no rows)")
    return Dataset(rows, source="<rows>")
