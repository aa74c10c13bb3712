"""Find the final answer in a model's reply.

The reply is searched for each answer format in a configurable order; the first format that
occurs wins, and within a format the *last* occurrence wins (models often restate a draft
answer before the final one). Formats:

``"answer_tag"``   ``<answer>42</answer>`` (case-insensitive tag names)
``"boxed"``        ``\\boxed{42}`` or ``\\fbox{...}``, nested braces allowed (``\\boxed{\\frac{1}{2}}``)
``"result_tag"``   ``[RESULT]42[/RESULT]``
``"hashes"``       ``#### 42`` (GSM8K style; the rest of that line)
``"answer_is"``    ``the answer is 42.`` / ``Final answer: 42`` (up to the end of the sentence)

When no format matches and ``allow_last_number`` is set, the last number in the reply is used;
such an answer does not count as *formatted*. Every search is linear in the reply's length, so
a 100 KB garbage reply is handled in milliseconds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

ANSWER_FORMATS = ("answer_tag", "boxed", "result_tag", "hashes", "answer_is")
DEFAULT_ANSWER_FORMATS = ANSWER_FORMATS
LAST_NUMBER = "last_number"


@dataclass(frozen=True)
class ExtractedAnswer:
    """The answer text found in a reply and the format it was found in."""

    text: str
    format: str

    @property
    def formatted(self) -> bool:
        """True when the answer came from an explicit answer format (not the last-number fallback)."""
        return self.format != LAST_NUMBER


def _last_tagged(text: str, open_re: re.Pattern, close_re: re.Pattern) -> str | None:
    """Content of the last complete ``open ... close`` pair, found in linear time."""
    close = None
    for close in close_re.finditer(text):
        pass
    if close is None:
        return None
    # An opening tag before an earlier closing tag is also before the last one, so only the
    # last closing tag needs a partner: the last opening tag before it.
    opening = None
    for opening in open_re.finditer(text, 0, close.start()):
        pass
    return None if opening is None else text[opening.end():close.start()]


_ANSWER_OPEN = re.compile(r"<\s*answer\s*>", re.IGNORECASE)
_ANSWER_CLOSE = re.compile(r"<\s*/\s*answer\s*>", re.IGNORECASE)
_RESULT_OPEN = re.compile(r"\[\s*RESULT\s*\]", re.IGNORECASE)
_RESULT_CLOSE = re.compile(r"\[\s*/\s*RESULT\s*\]", re.IGNORECASE)


def _answer_tag(text: str) -> str | None:
    return _last_tagged(text, _ANSWER_OPEN, _ANSWER_CLOSE)


def _result_tag(text: str) -> str | None:
    return _last_tagged(text, _RESULT_OPEN, _RESULT_CLOSE)


_BOXED_START = re.compile(r"\\(?:boxed|fbox)\s*\{")
_BOXED_BARE = re.compile(r"\\boxed[ \t]+([^\s$]+)")
_BRACE = re.compile(r"\\[{}]|[{}]")


def last_boxed(text: str) -> str | None:
    """Content of the last complete ``\\boxed{...}`` (nested braces matched, ``\\{`` ignored)."""
    starts = {m.end() - 1 for m in _BOXED_START.finditer(text)}
    found: tuple[int, int] | None = None
    if starts:
        stack: list[int] = []
        for m in _BRACE.finditer(text, min(starts)):
            token = m.group()
            if token == "{":
                stack.append(m.start())
            elif token == "}" and stack:
                opened = stack.pop()
                if opened in starts:  # keep the box that closes last (it encloses any inside it)
                    found = (opened, m.start())
    bare = None
    for bare in _BOXED_BARE.finditer(text):
        pass
    if bare is not None and (found is None or bare.start() > found[1]):
        return bare.group(1)
    if found is None:
        return None
    return text[found[0] + 1:found[1]]


_HASHES = re.compile(r"####[ \t]*([^\n]*)")


def _hashes(text: str) -> str | None:
    match = None
    for match in _HASHES.finditer(text):
        pass
    return None if match is None else match.group(1)


_ANSWER_IS = re.compile(r"\banswer\s*(?:is\b|=|:)(?:\s*:)?[ \t]*", re.IGNORECASE)
# End of sentence: a period, "!" or "?" followed by whitespace or the end; or a new line.
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)|\n")


def _answer_is(text: str) -> str | None:
    match = None
    for match in _ANSWER_IS.finditer(text):
        pass
    if match is None:
        return None
    rest = text[match.end():match.end() + 1000]
    end = _SENTENCE_END.search(rest)
    return rest[:end.start()] if end else rest


# A number as it appears in prose: 1,234.5 / -3 / .5 / 3/4 / 2.5e3 / $12.
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?(?:/\d+)?|-?\.\d+")


def last_number(text: str) -> str | None:
    """The last number in ``text`` (thousands separators, decimals, ``a/b`` kept), or None."""
    match = None
    for match in _NUMBER.finditer(text):
        pass
    return None if match is None else match.group().rstrip(",")


_EXTRACTORS: dict[str, Callable[[str], str | None]] = {
    "answer_tag": _answer_tag,
    "boxed": last_boxed,
    "result_tag": _result_tag,
    "hashes": _hashes,
    "answer_is": _answer_is,
}


def check_formats(formats: Sequence[str]) -> tuple[str, ...]:
    """Validate an ``answer_formats`` setting and return it as a tuple."""
    if isinstance(formats, str):
        formats = (formats,)
    formats = tuple(formats)
    unknown = [f for f in formats if f not in _EXTRACTORS]
    if unknown:
        raise ValueError(f"unknown answer format(s) {unknown}; choose from {list(ANSWER_FORMATS)}")
    if not formats:
        raise ValueError(f"answer_formats must name at least one of {list(ANSWER_FORMATS)}")
    return formats


def extract_answer(reply: str, formats: Sequence[str] = DEFAULT_ANSWER_FORMATS,
                   allow_last_number: bool = False) -> ExtractedAnswer | None:
    """Find the final answer in ``reply``; None when nothing answer-like is found.

    ``formats`` are tried in order (see the module docstring); an empty match (``<answer></answer>``)
    counts as not found for that format. With ``allow_last_number`` the last number in the reply
    is the fallback.
    """
    if not isinstance(formats, tuple) or not all(name in _EXTRACTORS for name in formats):
        formats = check_formats(formats)
    for name in formats:
        found = _EXTRACTORS[name](reply)
        if found is not None and found.strip():
            return ExtractedAnswer(found.strip(), name)
    if allow_last_number:
        number = last_number(reply)
        if number is not None:
            return ExtractedAnswer(number, LAST_NUMBER)
    return None
