"""Tool calls parsed out of a model's reply. Never raises: bad calls become error entries.

Recognised forms (checked in this order):

1. Hermes / Qwen / SmolLM blocks, several per reply allowed::

       <tool_call>{"name": "get_order", "arguments": {"order_id": 1042}}</tool_call>

   A block may hold a list of calls; a missing ``</tool_call>`` at the very end is tolerated
   when the JSON inside is complete.
2. OpenAI style: a JSON object with a ``tool_calls`` list, each item
   ``{"id": ..., "type": "function", "function": {"name": ..., "arguments": "<JSON text>"}}``
   (``arguments`` may also be an object).
3. A reply that is nothing but a JSON call object ``{"name": ..., "arguments": {...}}`` (or a
   list of them), optionally in a code fence.

A reply with none of these is the final answer. Within a recognised form, malformed JSON, a
missing or non-string name, or arguments that are not an object give a ``ParsedCall`` with an
``error`` the model can read.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

OPEN_TAG, CLOSE_TAG = "<tool_call>", "</tool_call>"
MAX_CALLS_PER_REPLY = 32
_FENCE = re.compile(r"^```[a-zA-Z]*\s*\n?(.*?)\n?```$", re.S)
_TOOL_CALLS_KEY = re.compile(r'"tool_calls"\s*:')


@dataclass
class ParsedCall:
    """One call found in a reply: ``name`` and ``arguments`` or an ``error``."""

    name: str | None = None
    arguments: Any = None
    id: str | None = None
    error: str | None = None
    raw: str = ""


@dataclass
class ParsedReply:
    """The calls in a reply; ``is_final`` when the reply holds no tool-call syntax at all."""

    calls: list[ParsedCall] = field(default_factory=list)

    @property
    def is_final(self) -> bool:
        return not self.calls


def _snippet(text: str, limit: int = 120) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + "..."


def _reject_constant(value: str) -> Any:
    raise ValueError(f"{value} is not valid JSON")


def _loads(text: str) -> Any:
    return json.loads(text, parse_constant=_reject_constant)


def _strip_fence(text: str) -> str:
    text = text.strip()
    match = _FENCE.match(text)
    return match.group(1).strip() if match else text


def _json_error(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return str(exc) or type(exc).__name__


def _call_from_object(obj: Any, raw: str) -> ParsedCall:
    """Normalise one call object (Hermes ``{name, arguments}`` or OpenAI ``{function: {...}}``)."""
    if not isinstance(obj, dict):
        return ParsedCall(error=f"a tool call must be a JSON object like "
                                f'{{"name": "...", "arguments": {{...}}}}, got a JSON {type(obj).__name__}',
                          raw=raw)
    call_id = obj.get("id") if isinstance(obj.get("id"), str) else None
    body = obj.get("function") if isinstance(obj.get("function"), dict) else obj
    name = body.get("name")
    if name is None:
        return ParsedCall(id=call_id, error='the tool call has no "name"', raw=raw)
    if not isinstance(name, str) or not name.strip():
        return ParsedCall(id=call_id, error=f'"name" must be a non-empty string, got {json.dumps(name)[:60]}', raw=raw)
    name = name.strip()
    arguments = body.get("arguments", body.get("parameters", {}))
    if arguments is None:
        arguments = {}
    if isinstance(arguments, str):
        try:
            arguments = _loads(arguments) if arguments.strip() else {}
        except (ValueError, RecursionError) as exc:
            return ParsedCall(name=name, id=call_id, raw=raw,
                              error=f"the arguments of {name} are not valid JSON ({_json_error(exc)})")
    if not isinstance(arguments, dict):
        return ParsedCall(name=name, id=call_id, raw=raw,
                          error=f'"arguments" of {name} must be a JSON object, got a JSON {type(arguments).__name__}')
    return ParsedCall(name=name, arguments=arguments, id=call_id, raw=raw)


def _calls_from_value(value: Any, raw: str) -> list[ParsedCall]:
    items = value if isinstance(value, list) else [value]
    if not items:
        return [ParsedCall(error="the tool-call list is empty", raw=raw)]
    return [_call_from_object(item, raw) for item in items]


def _parse_tag_blocks(text: str) -> list[ParsedCall]:
    calls = []
    for segment in text.split(OPEN_TAG)[1:MAX_CALLS_PER_REPLY + 2]:  # the cap below reports the rest
        closed = CLOSE_TAG in segment
        body = _strip_fence(segment.split(CLOSE_TAG, 1)[0])
        raw = _snippet(body)
        if not body:
            calls.append(ParsedCall(error=f"empty {OPEN_TAG} block", raw=raw))
            continue
        try:
            if closed:
                value = _loads(body)
            else:  # tolerate a missing close tag after complete JSON
                value, _ = json.JSONDecoder(parse_constant=_reject_constant).raw_decode(body)
        except (ValueError, RecursionError) as exc:
            missing = "" if closed else f" (and the block has no {CLOSE_TAG})"
            calls.append(ParsedCall(error=f"the tool call is not valid JSON: {_json_error(exc)}{missing}", raw=raw))
            continue
        calls.extend(_calls_from_value(value, raw))
    return calls


def _openai_calls(value: dict, raw: str) -> list[ParsedCall] | None:
    tool_calls = value.get("tool_calls")
    if tool_calls is None or tool_calls == []:
        return None
    if not isinstance(tool_calls, list):
        return [ParsedCall(error=f'"tool_calls" must be a list, got a JSON {type(tool_calls).__name__}', raw=raw)]
    return [_call_from_object(item, raw) for item in tool_calls]


def _is_bare_call(value: Any) -> bool:
    def looks_like_call(item: Any) -> bool:
        return isinstance(item, dict) and "name" in item and ("arguments" in item or "parameters" in item)
    if isinstance(value, list):
        return bool(value) and all(looks_like_call(item) for item in value)
    return looks_like_call(value)


def _parse_json_forms(text: str) -> list[ParsedCall]:
    body = _strip_fence(text)
    raw = _snippet(body)
    if body.startswith(("{", "[")):
        try:
            value = _loads(body)
        except (ValueError, RecursionError):
            value = None
        if isinstance(value, dict) and "tool_calls" in value:
            return _openai_calls(value, raw) or []
        if _is_bare_call(value):
            return _calls_from_value(value, raw)
    match = _TOOL_CALLS_KEY.search(text)
    if not match:
        return []
    # "tool_calls" inside other text: decode the enclosing object, trying the nearest braces first
    decoder = json.JSONDecoder(parse_constant=_reject_constant)
    starts = [m.start() for m in re.finditer(r"\{", text[: match.start()])][-8:]
    last_error: Exception | None = None
    for start in reversed(starts):
        try:
            value, _ = decoder.raw_decode(text, start)
        except (ValueError, RecursionError) as exc:
            last_error = exc
            continue
        if isinstance(value, dict) and "tool_calls" in value:
            return _openai_calls(value, _snippet(text[start:])) or []
    reason = f" ({_json_error(last_error)})" if last_error else ""
    return [ParsedCall(error=f'found "tool_calls" but not a valid JSON object around it{reason}',
                       raw=_snippet(text[max(0, match.start() - 20):]))]


def parse_tool_calls(text: str) -> ParsedReply:
    """Find the tool calls in a reply (see the module docstring); never raises."""
    try:
        if not isinstance(text, str):
            return ParsedReply([ParsedCall(error=f"the reply must be text, got {type(text).__name__}")])
        calls = _parse_tag_blocks(text) if OPEN_TAG in text else _parse_json_forms(text)
    except Exception as exc:  # noqa: BLE001 - untrusted text must never crash the env
        calls = [ParsedCall(error=f"could not parse the tool calls ({type(exc).__name__})")]
    if len(calls) > MAX_CALLS_PER_REPLY:
        calls = calls[:MAX_CALLS_PER_REPLY] + [
            ParsedCall(error=f"too many tool calls in one reply (at most {MAX_CALLS_PER_REPLY}); "
                             "the rest were ignored")]
    return ParsedReply(calls)


def format_tool_calls(calls: list[dict[str, Any]]) -> str:
    """The ``<tool_call>`` text for ``[{"name": ..., "arguments": {...}}, ...]`` (for scripted policies)."""
    return "\n".join(f"{OPEN_TAG}\n{json.dumps({'name': c['name'], 'arguments': c.get('arguments', {})})}\n{CLOSE_TAG}"
                     for c in calls)
