"""Checking a final answer against expected facts.

A fact is a dict:

- ``{"type": "number", "value": 45.5, "tol": 0.01}``: some number in the answer is within
  ``tol`` of ``value`` (``$1,234.50`` reads as 1234.5);
- ``{"type": "text", "value": "shipped", "aliases": [...], "exclusive": [...]}``: the word or
  phrase (or an alias) appears, case-insensitively, and none of the ``exclusive`` alternatives
  does (so listing every possible status does not pass); occurrences right after a negation
  ("has not shipped", "cannot be cancelled") count for neither;
- ``{"type": "date", "value": "2026-03-14"}``: the date appears as ``2026-03-14``,
  ``March 14, 2026`` or ``14 March 2026``;
- ``{"type": "time", "value": "14:30"}``: ``14:30`` or ``2:30 pm`` appears.

An answer that lists more than ``len(facts) + MAX_EXTRA_VALUES`` distinct numbers, dates and
times fails: guessing by listing many values earns nothing.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

MAX_EXTRA_VALUES = 8
_MONTHS = {name: i for i, names in enumerate(
    [("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"), ("may",), ("jun", "june"),
     ("jul", "july"), ("aug", "august"), ("sep", "sept", "september"), ("oct", "october"), ("nov", "november"),
     ("dec", "december")], start=1) for name in names}
_MONTH = "(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_ISO_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)")
_MONTH_DAY_YEAR = re.compile(rf"\b{_MONTH}\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b", re.I)
_DAY_MONTH_YEAR = re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH},?\s+(\d{{4}})\b", re.I)
_TIME = re.compile(r"(?<![\d:])(\d{1,2}):(\d{2})(?![\d:])(\s*([ap])\.?m\.?\b)?", re.I)
_NUMBER = re.compile(r"(?<![\w.])([-\u2212]?)(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?!\d)")


def _date(year: str, month: int, day: str) -> str | None:
    try:
        return dt.date(int(year), month, int(day)).isoformat()
    except ValueError:
        return None


def extract_values(text: str) -> tuple[list[float], list[str], list[str]]:
    """The numbers, ISO dates and ``HH:MM`` times mentioned in ``text``."""
    dates: list[str] = []

    def take_date(found: str | None) -> str:
        if found:
            dates.append(found)
        return " "

    text = _ISO_DATE.sub(lambda m: take_date(_date(m[1], int(m[2]), m[3])), text)
    text = _MONTH_DAY_YEAR.sub(lambda m: take_date(_date(m[3], _MONTHS[m[1].lower()], m[2])), text)
    text = _DAY_MONTH_YEAR.sub(lambda m: take_date(_date(m[3], _MONTHS[m[2].lower()], m[1])), text)
    times: list[str] = []

    def take_time(m: re.Match) -> str:
        hour, minute = int(m[1]), int(m[2])
        if m[4]:
            hour = hour % 12 + (12 if m[4].lower() == "p" else 0)
        if hour < 24 and minute < 60:
            times.append(f"{hour:02d}:{minute:02d}")
        return " "

    text = _TIME.sub(take_time, text)
    numbers = [float(("-" if m[1] else "") + m[2].replace(",", "") + (m[3] or "")) for m in _NUMBER.finditer(text)]
    return numbers, dates, times


_NEGATION = re.compile(r"(\b(not|never|cannot|no longer|yet to be)\b|n't\b)[^.;,]{0,12}$", re.I)


def _phrase(value: str) -> re.Pattern:
    return re.compile(r"(?<![\w@.-])" + re.escape(value.strip()) + r"(?![\w@-])", re.I)


def _affirmed(value: str, answer: str) -> bool:
    """Whether ``value`` occurs in ``answer`` other than right after a negation ("not shipped")."""
    return any(not _NEGATION.search(answer[max(0, m.start() - 30):m.start()]) for m in _phrase(value).finditer(answer))


def check_fact(fact: dict[str, Any], answer: str, values: tuple[list[float], list[str], list[str]]) -> str | None:
    """``None`` when ``answer`` states ``fact``; otherwise what is wrong."""
    numbers, dates, times = values
    kind, value = fact.get("type", "text"), fact["value"]
    if kind == "number":
        tol = float(fact.get("tol", 1e-9))
        if any(math.isclose(n, float(value), abs_tol=tol + 1e-9) for n in numbers):
            return None
        return f"expected the number {value}"
    if kind == "date":
        return None if value in dates else f"expected the date {value}"
    if kind == "time":
        return None if value in times else f"expected the time {value}"
    if kind == "text":
        if not any(_affirmed(v, answer) for v in [value, *fact.get("aliases", ())]):
            return f"expected {value!r}"
        wrong = [alt for alt in fact.get("exclusive", ()) if _affirmed(alt, answer)]
        return f"expected only {value!r} but the answer also says {wrong[0]!r}" if wrong else None
    raise ValueError(f"unknown fact type {kind!r} (use number, text, date or time)")


def as_fact(value: Any) -> dict[str, Any]:
    """A fact dict from a fact dict, a number or a string."""
    if isinstance(value, dict):
        if "value" not in value:
            raise ValueError(f"fact {value!r} has no 'value'")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"a fact must be a dict, a number or a string, got {type(value).__name__}")
    if isinstance(value, str):
        return {"type": "text", "value": value}
    return {"type": "number", "value": value, "tol": 1e-6 * max(1.0, abs(value))}


def check_answer(answer: str | None, facts: list[Any]) -> tuple[bool, str]:
    """Whether ``answer`` states every fact; the second item explains a failure."""
    if answer is None or not answer.strip():
        return False, "no final answer"
    facts = [as_fact(f) for f in facts]
    values = extract_values(answer)
    distinct = len(set(values[0])) + len(set(values[1])) + len(set(values[2]))
    if distinct > len(facts) + MAX_EXTRA_VALUES:
        return False, f"the answer lists {distinct} different values; state the facts asked for"
    problems = [p for p in (check_fact(f, answer, values) for f in facts) if p]
    return (not problems), "; ".join(problems)
