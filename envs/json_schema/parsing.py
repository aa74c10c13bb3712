"""Find and parse the one JSON value in a model's reply, safely.

A reply is accepted in two shapes:

* **raw** - the whole reply, after trimming whitespace, is one JSON value;
* **fenced** - the reply holds exactly one fenced code block (three backticks, any info string
  such as ``json``) whose content is one JSON value; text around the block is ignored.
  (Three backticks anywhere count as a fence, including inside a JSON string.)

Replies are untrusted, so parsing is strict and bounded, and every failure raises
``JSONReplyError`` with a readable reason instead of a traceback:

* the reply and the JSON text are size-checked before any parsing (``ParseLimits``);
* nesting depth is measured by a linear scan before ``json.loads`` runs, so 10,000 levels of
  brackets never reach the recursive parser;
* ``NaN``, ``Infinity`` and ``-Infinity`` literals, numbers that overflow to infinity, over-long
  number literals, duplicate object keys and unpaired UTF-16 surrogates are rejected;
* the parsed value may hold at most ``max_values`` JSON values in total.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

FENCE = "```"
# A string literal (with escapes); unterminated strings are left alone and fail in the parser.
_STRING_LITERAL = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_INFO_STRING = re.compile(r"[A-Za-z][\w+.-]*")
_SURROGATE = re.compile("[\ud800-\udfff]")
_VALUE_START = set('{["-0123456789tfn')


class JSONReplyError(ValueError):
    """The reply does not hold exactly one acceptable JSON value; the message says why."""


@dataclass(frozen=True)
class ParseLimits:
    """Bounds on what a reply may contain (all checked before or during parsing)."""

    max_reply_chars: int = 1_000_000
    max_json_chars: int = 100_000
    max_depth: int = 64
    max_values: int = 10_000
    max_number_chars: int = 64

    def __post_init__(self) -> None:
        for name in ("max_reply_chars", "max_json_chars", "max_depth", "max_values", "max_number_chars"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ParseLimits.{name} must be a positive integer, got {value!r}")


DEFAULT_LIMITS = ParseLimits()


@dataclass(frozen=True)
class ParsedReply:
    """A parsed JSON value and where it came from (``"raw"`` or ``"fenced"``)."""

    value: Any
    source: str


def extract_json_text(reply: str) -> tuple[str, str]:
    """The candidate JSON text of a reply and its source; raises ``JSONReplyError``."""
    fences = reply.count(FENCE)
    if fences == 0:
        return reply.strip(), "raw"
    if fences % 2:
        raise JSONReplyError(f"the reply has an unclosed fenced code block (an odd number of {FENCE} fences: {fences})")
    if fences > 2:
        raise JSONReplyError(f"the reply has {fences // 2} fenced code blocks; expected exactly one")
    start = reply.index(FENCE) + len(FENCE)
    end = reply.index(FENCE, start)
    body = reply[start:end]
    first_line, newline, rest = body.partition("\n")
    if newline and (not first_line.strip() or _INFO_STRING.fullmatch(first_line.strip())):
        body = rest  # drop the info string ("json", "JSON", ...)
    return body.strip(), "fenced"


def nesting_depth(text: str, limit: int | None = None) -> int:
    """The maximum bracket nesting depth of JSON text, ignoring brackets inside strings.

    Linear time and no recursion. With ``limit``, stops as soon as the depth exceeds it.
    """
    brackets = _NOT_BRACKET.sub("", _STRING_LITERAL.sub("", text))
    depth = deepest = 0
    for char in brackets:
        if char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if limit is not None and deepest > limit:
                    return deepest
        else:
            depth -= 1
    return deepest


class _Rejected(Exception):
    """Raised from inside ``json.loads`` hooks to stop parsing with a reason."""


def _reject_constant(name: str) -> Any:
    raise _Rejected(f"{name} is not valid JSON (NaN and Infinity are not allowed)")


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _Rejected(f"duplicate key {_short(key)} in an object")
        obj[key] = value
    return obj


def _short(text: str, limit: int = 40) -> str:
    shown = json.dumps(text if len(text) <= limit else text[:limit] + "...", ensure_ascii=True)
    return shown


def _loads(text: str, limits: ParseLimits) -> Any:
    def parse_int(literal: str) -> int:
        if len(literal) > limits.max_number_chars:
            raise _Rejected(f"a number literal of {len(literal)} characters is too long "
                            f"(limit {limits.max_number_chars})")
        return int(literal)

    def parse_float(literal: str) -> float:
        if len(literal) > limits.max_number_chars:
            raise _Rejected(f"a number literal of {len(literal)} characters is too long "
                            f"(limit {limits.max_number_chars})")
        value = float(literal)
        if not math.isfinite(value):
            raise _Rejected(f"the number {literal} is out of range (it overflows to infinity)")
        return value

    return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_object,
                      parse_int=parse_int, parse_float=parse_float)


def _check_values(value: Any, limits: ParseLimits) -> None:
    """Count the values (iteratively) and reject unpaired surrogates in strings and keys."""
    stack, count = [value], 0
    while stack:
        item = stack.pop()
        count += 1
        if count > limits.max_values:
            raise JSONReplyError(f"the JSON holds more than {limits.max_values} values")
        if isinstance(item, str):
            if _SURROGATE.search(item):
                raise JSONReplyError("a JSON string contains an unpaired UTF-16 surrogate")
        elif isinstance(item, dict):
            for key in item:
                if _SURROGATE.search(key):
                    raise JSONReplyError("a JSON object key contains an unpaired UTF-16 surrogate")
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def loads_strict(text: str, limits: ParseLimits = DEFAULT_LIMITS) -> Any:
    """Parse JSON text under ``limits``; raises ``JSONReplyError`` naming the problem."""
    if len(text) > limits.max_json_chars:
        raise JSONReplyError(f"the JSON is {len(text):,} characters long; the limit is {limits.max_json_chars:,}")
    if not text:
        raise JSONReplyError("no JSON value found (the reply or code block is empty)")
    depth = nesting_depth(text, limit=limits.max_depth)
    if depth > limits.max_depth:
        raise JSONReplyError(f"the JSON nests deeper than {limits.max_depth} levels")
    try:
        value = _loads(text, limits)
    except _Rejected as exc:
        raise JSONReplyError(str(exc)) from None
    except json.JSONDecodeError as exc:
        raise JSONReplyError(_describe_decode_error(exc, text)) from None
    except (ValueError, RecursionError) as exc:  # e.g. integer conversion limits
        raise JSONReplyError(f"invalid JSON: {exc}") from None
    _check_values(value, limits)
    return value


def _describe_decode_error(exc: json.JSONDecodeError, text: str) -> str:
    where = f"(line {exc.lineno}, column {exc.colno})"
    if exc.msg == "Extra data":
        return f"extra text after the JSON value {where}; reply with exactly one JSON value"
    if exc.pos == 0 and text[:1] not in _VALUE_START:
        return (f"the reply does not start with a JSON value (found {_short(text[:20])}); reply with "
                f"the JSON alone or inside one {FENCE}json code block")
    if exc.pos >= len(text) or exc.msg.startswith("Unterminated string"):
        return f"the JSON ends early (truncated?): {exc.msg} {where}"
    return f"invalid JSON: {exc.msg} {where}"


def parse_reply(reply: Any, limits: ParseLimits = DEFAULT_LIMITS) -> ParsedReply:
    """Extract and parse the single JSON value of a reply; raises ``JSONReplyError``."""
    if not isinstance(reply, str):
        raise JSONReplyError(f"the reply must be a string, got {type(reply).__name__}")
    if len(reply) > limits.max_reply_chars:
        raise JSONReplyError(f"the reply is {len(reply):,} characters long; the limit is {limits.max_reply_chars:,}")
    if not reply.strip():
        raise JSONReplyError("the reply is empty; expected a JSON value")
    text, source = extract_json_text(reply)
    return ParsedReply(loads_strict(text, limits), source)
