"""The prompts of the JSON-schema extraction task."""

from __future__ import annotations

import json
from typing import Any

SYSTEM_PROMPT = (
    "You extract structured data from text. Reply with one JSON value that validates against the "
    "given JSON Schema: the JSON alone, or inside a single ```json code block. Use only facts stated "
    "in the text, leave out optional fields the text does not mention, do not add fields the schema "
    "does not define, and write dates as YYYY-MM-DD."
)


def schema_text(schema: Any) -> str:
    """The schema as compact one-line JSON, as shown in prompts."""
    return json.dumps(schema, ensure_ascii=False, separators=(", ", ": "))


def user_prompt(schema: Any, text: str) -> str:
    """The user message: the schema, then the text to extract from."""
    return (
        "Extract the data described by this JSON Schema from the text below.\n\n"
        f"JSON Schema:\n{schema_text(schema)}\n\n"
        f'Text:\n"""\n{text}\n"""'
    )
