"""Equality of leaf values (strings, numbers, booleans, null) under the rules a schema implies.

Types must agree: a number never equals a numeric string (``12`` != ``"12"``) and ``true`` never
equals ``1``. Numbers are equal when they are close (relative 1e-9, or the ``x-tolerance``
annotation as an absolute tolerance), so ``12``, ``12.0`` and ``1.2e1`` are one value.

Strings are compared by a rule, chosen by the ``x-compare`` annotation when present, otherwise
inferred from the (sub)schema:

============== ================================================================ =============
rule           meaning                                                          inferred from
============== ================================================================ =============
exact          identical strings                                                ``enum``,
                                                                                ``const``,
                                                                                ``pattern``
date           the same calendar day; ISO ``2024-03-05`` and unambiguous        ``format:
               written forms (``March 5, 2024``, ``5 Mar 2024``, ``Tuesday,     date``
               5th March 2024``, ``2024/03/05``) are understood
date-time      the same instant (RFC 3339, offsets applied; naive times         ``format:
               compare as written)                                              date-time``
case-sensitive Unicode NFKC, surrounding whitespace trimmed, inner runs of      ``x-compare``
               whitespace collapsed, trailing ``. , ; : !`` dropped             only
text           as ``case-sensitive``, then case-folded                          everything
                                                                                else (also
                                                                                ``email``)
============== ================================================================ =============

When a date or date-time does not parse, it falls back to the ``text`` rule.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from typing import Any, Mapping

from .validation import parse_date_time

STRING_RULES = ("exact", "case-sensitive", "text", "date", "date-time")
_MONTHS = {name: i for i, names in enumerate(
    (("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"), ("may",),
     ("jun", "june"), ("jul", "july"), ("aug", "august"), ("sep", "sept", "september"),
     ("oct", "october"), ("nov", "november"), ("dec", "december")), start=1) for name in names}
_WEEKDAY = r"(?:(?:mon|tues?|wed(?:nes)?|thu(?:rs?)?|fri|sat(?:ur)?|sun)(?:day)?,?\s+)?"
_DAY = r"(?:the\s+)?(\d{1,2})(?:st|nd|rd|th)?"
_ISO_LIKE = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})")
_MONTH_FIRST = re.compile(_WEEKDAY + r"([a-z]+)\.?\s+" + _DAY + r",?\s+(\d{4})")
_DAY_FIRST = re.compile(_WEEKDAY + _DAY + r"\s+(?:of\s+)?([a-z]+)\.?,?\s+(\d{4})")
_TRAILING_PUNCTUATION = ".,;:!"


def normalize_text(text: str, casefold: bool = True) -> str:
    """NFKC, trimmed, inner whitespace collapsed, trailing ``.,;:!`` dropped, optionally case-folded."""
    text = " ".join(unicodedata.normalize("NFKC", text).split()).rstrip(_TRAILING_PUNCTUATION).rstrip()
    return text.casefold() if casefold else text


def parse_date(text: str) -> dt.date | None:
    """A calendar date from ISO or an unambiguous written form, or ``None``."""
    text = " ".join(text.strip().lower().split())
    try:
        match = _ISO_LIKE.fullmatch(text)
        if match:
            return dt.date(int(match[1]), int(match[2]), int(match[3]))
        match = _MONTH_FIRST.fullmatch(text)
        if match and match[1] in _MONTHS:
            return dt.date(int(match[3]), _MONTHS[match[1]], int(match[2]))
        match = _DAY_FIRST.fullmatch(text)
        if match and match[2] in _MONTHS:
            return dt.date(int(match[3]), _MONTHS[match[2]], int(match[1]))
    except ValueError:  # e.g. February 30
        return None
    return None


def string_rule(schema: Mapping[str, Any]) -> str:
    """The comparison rule for strings under ``schema`` (see the module docstring)."""
    rule = schema.get("x-compare")
    if rule in STRING_RULES:
        return rule
    if "enum" in schema or "const" in schema or "pattern" in schema:
        return "exact"
    return {"date": "date", "date-time": "date-time"}.get(schema.get("format"), "text")


def strings_equal(predicted: str, expected: str, rule: str) -> bool:
    if rule == "exact":
        return predicted == expected
    if rule == "date":
        a, b = parse_date(predicted), parse_date(expected)
        if a is not None and b is not None:
            return a == b
    elif rule == "date-time":
        a, b = parse_date_time(predicted.strip()), parse_date_time(expected.strip())
        if a is not None and b is not None:
            return a == b
    elif rule == "case-sensitive":
        return normalize_text(predicted, casefold=False) == normalize_text(expected, casefold=False)
    return normalize_text(predicted) == normalize_text(expected)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def numbers_equal(predicted: float, expected: float, tolerance: float | None = None) -> bool:
    if isinstance(predicted, int) and isinstance(expected, int) and not tolerance:
        return predicted == expected
    try:
        a, b = float(predicted), float(expected)
    except OverflowError:  # integers too large for a float
        return False
    if tolerance is not None:
        return abs(a - b) <= tolerance
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def scalars_equal(predicted: Any, expected: Any, schema: Mapping[str, Any]) -> bool:
    """Whether two leaf values are the same under the rules implied by ``schema``."""
    if isinstance(expected, bool) or expected is None:
        return predicted is expected
    if _is_number(expected):
        tolerance = schema.get("x-tolerance")
        if not (_is_number(tolerance) and tolerance >= 0):
            tolerance = None
        return _is_number(predicted) and numbers_equal(predicted, expected, tolerance)
    if isinstance(expected, str):
        return isinstance(predicted, str) and strings_equal(predicted, expected, string_rule(schema))
    return predicted == expected
