"""Is a model's answer equal to the expected one?

Fast, in-process paths handle what replies to arithmetic and word problems look like:

- numbers with thousands separators (``1,234``, ``1\\,234``, ``1{,}234``), signs, decimals with
  trailing zeros (``12.50``), scientific notation (``2.5e3``, ``2.5 \\times 10^{3}``);
- exact rationals: ``0.5`` = ``1/2`` = ``\\frac{1}{2}`` = ``\\dfrac12``; mixed numbers ``2 1/2``;
- currency and unit words (``$1,200``, ``12 apples``, ``3.5 km/h``, ``\\text{ cm}^2``), percent
  (``25%`` matches ``25`` and ``0.25``), ``x = 5``;
- a decimal with at least two places matches a non-terminating rational it rounds
  (``0.33`` and ``0.333`` match ``1/3``; ``0.3`` does not).

Everything else (``\\sqrt{2}``, ``(x+1)^2``, sets, tuples, intervals) goes to ``math-verify`` in a
worker process with a hard time limit (see ``rftgym.envs.math.symbolic``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from numbers import Number

from rftgym.envs.math.extraction import last_boxed

# Answers longer than this are not compared (a real final answer is short).
MAX_ANSWER_CHARS = 500
# Bounds that keep exact arithmetic cheap: digits in a number, size of an exponent.
_MAX_DIGITS = 60
_MAX_EXPONENT = 60


@dataclass(frozen=True)
class Equivalence:
    """Outcome of a comparison: ``equal``, the ``method`` that decided it and a short ``detail``."""

    equal: bool
    method: str
    detail: str = ""


# --- ground truth ------------------------------------------------------------------------------

def answer_from_ground_truth(ground_truth: object) -> str:
    """The expected final answer as text.

    Accepts a number, a string holding a number or a LaTeX expression (``$...$`` allowed), a
    GSM8K-style solution ending in ``#### 42`` or a solution with a ``\\boxed{...}`` answer.
    Raises ``ValueError`` naming the problem for anything else.
    """
    if isinstance(ground_truth, bool) or ground_truth is None:
        raise ValueError(f"ground_truth must be a number or a string, got {ground_truth!r}")
    if isinstance(ground_truth, (Fraction, Decimal)):
        return _format_fraction(Fraction(ground_truth))
    if isinstance(ground_truth, Number):
        if isinstance(ground_truth, float):
            if not math.isfinite(ground_truth):
                raise ValueError(f"ground_truth must be finite, got {ground_truth!r}")
            return _format_fraction(Fraction(repr(ground_truth)))
        if isinstance(ground_truth, int):
            return str(ground_truth)
        raise ValueError(f"ground_truth must be a real number or a string, got {ground_truth!r}")
    if not isinstance(ground_truth, str):
        raise ValueError(f"ground_truth must be a number or a string, got {type(ground_truth).__name__}")
    text = ground_truth
    if "####" in text:
        text = text.rsplit("####", 1)[1]
    elif "\\boxed" in text or "\\fbox" in text:
        boxed = last_boxed(text)
        if boxed is not None:
            text = boxed
    text = text.strip()
    if not text:
        raise ValueError(f"ground_truth {ground_truth[:80]!r} holds no answer")
    return text


def _format_fraction(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    if _terminates(value):
        return format(Decimal(value.numerator) / Decimal(value.denominator), "f")
    return f"{value.numerator}/{value.denominator}"


def format_answer(value: Fraction) -> str:
    """Canonical text of an exact answer: ``42``, ``12.5`` or ``17/4``."""
    return _format_fraction(Fraction(value))


def _terminates(value: Fraction) -> bool:
    """True when the decimal expansion of ``value`` is finite (denominator of the form 2^a 5^b)."""
    d = value.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    return d == 1


# --- normalization -----------------------------------------------------------------------------

_DELIMITERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))
_TEXT_COMMANDS = re.compile(r"\\(?:text|textbf|textit|textrm|mathrm|mathbf|mathit|mbox|operatorname)\s*\{([^{}]*)\}")
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|°|\\circ|\\degree")
_SPACING_IN_NUMBER = re.compile(r"(?<=\d)(?:\\[,!;: ]|\{,\}|~|\u2009|\u202f)(?=\d)")
_SPACING = re.compile(r"\\[,!;: ]|~|\\quad|\\qquad|\u2009|\u202f|\u00a0")
_ASSIGNMENT = re.compile(r"^[A-Za-z][A-Za-z_0-9]*\s*(?:=|:=)\s*(?=\S)")
_LEFT_RIGHT = re.compile(r"\\(?:left|right)(?![A-Za-z])\s*")


def normalize(text: str) -> str:
    """Strip math delimiters, ``\\boxed``, text commands, spacing and leading ``x =`` from an answer."""
    s = text.strip()
    for _ in range(3):  # delimiters and boxes can nest: $\boxed{...}$
        before = s
        for left, right in _DELIMITERS:
            if s.startswith(left) and s.endswith(right) and len(s) >= len(left) + len(right):
                s = s[len(left):len(s) - len(right)].strip()
        if s.startswith(("\\boxed", "\\fbox")):
            inner = last_boxed(s)
            if inner is not None and s.rstrip().endswith("}"):
                s = inner.strip()
        s = s.rstrip(" .")
        if s == before:
            break
    s = s.replace("\u2212", "-").replace("\u2013", "-")
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = s.replace("\\$", "$").replace("\\%", "%").replace("\\&", "&")
    s = _TEXT_COMMANDS.sub(lambda m: f" {m.group(1)} ", s)
    s = _DEGREES.sub("", s)
    s = _SPACING_IN_NUMBER.sub("", s)
    s = s.replace("{,}", ",")
    s = _SPACING.sub(" ", s)
    s = _LEFT_RIGHT.sub("", s)
    s = _ASSIGNMENT.sub("", s) if s.count("=") == 1 else s
    s = " ".join(s.split())
    return s.rstrip(" .")


# --- exact numbers -----------------------------------------------------------------------------

_UNIT_TOKEN = re.compile(
    r"(?:(?<=[\d\s%/.)}])|^)"  # a unit follows a number, a space, %, a slash or a bracket
    r"((?:[A-Za-z]{2,}\.?|[mgslLh])(?:\s*\^\s*\{?[23]\}?|[23²³])?)$")
_UNIT_SEPARATOR = re.compile(r"(?:\s+|\s*/\s*|\s*\\cdot\s*)$")
# Words that change a number's meaning: never stripped as units.
_NOT_UNITS = frozenset({
    "pi", "sqrt", "frac", "times", "plus", "minus", "over", "divided", "by", "squared", "cubed",
    "root", "roots", "inf", "infty", "infinity", "mod", "log", "ln", "sin", "cos", "tan", "exp",
    "thousand", "thousands", "million", "millions", "billion", "billions", "hundred", "hundreds",
    "dozen", "dozens", "half", "halves", "third", "thirds", "quarter", "quarters", "percent",
    "pct", "percentage", "cent", "or", "and", "to", "not", "no", "cdot", "approx", "le", "ge",
    "neq", "pm", "mp", "dots", "ldots", "cdots", "sum", "int", "prod",
})
_CURRENCY_PREFIX = re.compile(r"^([-+]?)\s*(?:US\$|\$|€|£|¥|₹|USD|EUR|GBP|Rs\.?)\s*")
_PERCENT_SUFFIX = re.compile(r"\s*(?:%|percent|per\s*cent|pct)$", re.IGNORECASE)

_INT = r"(?:\d{1,3}(?:,\d{3})+|\d{1,3}(?: \d{3})+|\d+)"
_DECIMAL = re.compile(rf"^([-+]?)({_INT}(?:\.\d*)?|\.\d+)(?:[eE]([-+]?\d+)|\s*(?:\\times|\\cdot|×|\*|x)\s*10\s*\^\s*\{{?\s*([-+]?\d+)\s*\}}?)?$")
_SLASH_FRACTION = re.compile(r"^([-+]?)\s*(\d+)\s*/\s*(\d+)$")
_LATEX_FRACTION = re.compile(r"^([-+]?)\s*\\frac\s*(?:\{\s*([-+]?\d+(?:\.\d+)?)\s*\}|(\d))\s*(?:\{\s*([-+]?\d+(?:\.\d+)?)\s*\}|(\d))$")
_MIXED = re.compile(r"^([-+]?)(\d+)\s*(?:\s(\d+)\s*/\s*(\d+)|\\frac\s*\{\s*(\d+)\s*\}\s*\{\s*(\d+)\s*\})$")


@dataclass(frozen=True)
class NumberReading:
    """One reading of an answer as an exact number; ``places``: decimal places if written as a decimal."""

    value: Fraction
    places: int | None = None


OVERSIZED = NumberReading(Fraction(0))  # a number too long or too large to compare exactly


def _core_number(core: str) -> NumberReading | None:
    m = _DECIMAL.match(core)
    if m:
        sign, digits, exp1, exp2 = m.groups()
        digits = digits.replace(",", "").replace(" ", "")
        exponent = int(exp1 or exp2 or 0)
        if abs(exponent) > _MAX_EXPONENT or len(digits) > _MAX_DIGITS:
            return OVERSIZED
        try:
            value = Fraction(Decimal(digits)) * Fraction(10) ** exponent
        except (InvalidOperation, ValueError):
            return None
        places = len(digits.split(".", 1)[1]) if "." in digits and exponent == 0 else None
        return NumberReading(-value if sign == "-" else value, places)
    m = _SLASH_FRACTION.match(core)
    if m:
        sign, num, den = m.groups()
        if len(num) + len(den) > _MAX_DIGITS:
            return OVERSIZED
        if int(den) == 0:
            return None
        value = Fraction(int(num), int(den))
        return NumberReading(-value if sign == "-" else value)
    m = _LATEX_FRACTION.match(core)
    if m:
        sign, num_braced, num_digit, den_braced, den_digit = m.groups()
        if len(core) > 2 * _MAX_DIGITS:
            return OVERSIZED
        num, den = Fraction(num_braced or num_digit), Fraction(den_braced or den_digit)
        if den == 0:
            return None
        value = num / den
        return NumberReading(-value if sign == "-" else value)
    m = _MIXED.match(core)
    if m:
        sign, whole, n1, d1, n2, d2 = m.groups()
        if len(core) > 2 * _MAX_DIGITS:
            return OVERSIZED
        num, den = int(n1 or n2), int(d1 or d2)
        if den == 0 or num >= den:
            return None  # "3 5/4" is not a mixed number
        value = int(whole) + Fraction(num, den)
        return NumberReading(-value if sign == "-" else value)
    return None


def _strip_units(s: str) -> str:
    for _ in range(6):
        m = _UNIT_TOKEN.search(s)
        if not m or m.group(1).rstrip(".").lower() in _NOT_UNITS:
            break
        rest = s[:m.start()]
        if not rest or not re.search(r"[\d}%]", rest):
            break  # nothing numeric left: "apples" is not a number
        s = _UNIT_SEPARATOR.sub("", rest).rstrip()
    return s


def parse_number(text: str) -> tuple[NumberReading, ...] | None:
    """Readings of a normalized answer as exact numbers, or None when it is not a plain number.

    ``"25%"`` has two readings (25 and 0.25); every other number has one; a number with more
    than 60 digits or an exponent beyond 60 has none (it is never equal to a plain number).
    """
    s = _strip_units(text)
    percent = False
    m = _PERCENT_SUFFIX.search(s)
    if m:
        s, percent = s[:m.start()], True
        s = _strip_units(s)
    sign = ""
    m = _CURRENCY_PREFIX.match(s)
    if m:
        sign, s = m.group(1), s[m.end():]
    s = s.strip()
    if sign and s[:1] in "+-":
        return None  # "-$-5"
    number = _core_number(sign + s)
    if number is None:
        return None
    if number is OVERSIZED:
        return ()
    if not percent:
        return (number,)
    places = None if number.places is None else number.places + 2
    return (number, NumberReading(number.value / 100, places))


def _close_enough(exact: NumberReading, written: NumberReading) -> bool:
    """``written`` is a decimal with >= 2 places that rounds the non-terminating ``exact``."""
    if written.places is None or written.places < 2 or _terminates(exact.value):
        return False
    return abs(exact.value - written.value) <= Fraction(1, 2 * 10 ** written.places)


def numbers_equal(gold: tuple[NumberReading, ...], pred: tuple[NumberReading, ...]) -> bool:
    """Whether some reading of ``gold`` equals some reading of ``pred`` (see the module docstring)."""
    for g in gold:
        for p in pred:
            if g.value == p.value or _close_enough(g, p) or _close_enough(p, g):
                return True
    return False


# --- the comparison ----------------------------------------------------------------------------

_LATEX_COMMAND = re.compile(r"\\[A-Za-z]")


def _compact(s: str) -> str:
    return "".join(s.split())


_LONE_NUMBER = re.compile(r"(?<![\w.^/\\])[-+]?\$?\d[\d,]*(?:\.\d+)?%?(?![\w^/\\]|\.\d|,\d)")
_PLAIN_WORDS = re.compile(r"[A-Za-z\s,.:;!?'\"()-]*")


def lone_number(text: str) -> tuple[NumberReading, ...] | None:
    """The readings of the only number in a sentence of plain words ("the total is 12 cookies")."""
    numbers = _LONE_NUMBER.findall(text)
    if len(numbers) != 1:
        return None
    words = _LONE_NUMBER.sub(" ", text)
    if not _PLAIN_WORDS.fullmatch(words):
        return None
    if any(word in _NOT_UNITS or word in ("not", "no", "never", "isn't") for word in words.lower().split()):
        return None
    return parse_number(numbers[0].rstrip(","))


def answers_equivalent(gold: str, pred: str, *, symbolic: bool = True,
                       symbolic_timeout: float = 3.0) -> Equivalence:
    """Compare an expected answer with an extracted one (both as text).

    Plain numbers are compared exactly in process; otherwise identical normalized text is equal;
    otherwise ``math-verify`` decides in a worker process killed after ``symbolic_timeout`` seconds.
    """
    if len(pred) > MAX_ANSWER_CHARS:
        return Equivalence(False, "length", f"the answer is {len(pred)} characters (limit {MAX_ANSWER_CHARS})")
    g, p = normalize(gold), normalize(pred)
    if not p:
        return Equivalence(False, "empty", "the answer is empty")
    gold_number = parse_number(g)
    pred_number = parse_number(p)
    if _compact(g) == _compact(p):
        return Equivalence(True, "text")
    if gold_number is not None and pred_number is not None:
        detail = "" if pred_number and gold_number else "a number too large to compare exactly"
        return Equivalence(numbers_equal(gold_number, pred_number), "number", detail)
    if gold_number is not None and not _LATEX_COMMAND.search(p):
        if not re.search(r"\d", p):
            return Equivalence(False, "number", "the answer holds no number")
        in_words = lone_number(p)
        if in_words is not None:
            return Equivalence(numbers_equal(gold_number, in_words), "number", "the one number in the answer")
    if not symbolic:
        return Equivalence(False, "text", "not a plain number and symbolic checking is off")
    from rftgym.envs.math.symbolic import symbolic_equal

    outcome = symbolic_equal(g, p, symbolic_timeout)
    return Equivalence(bool(outcome.equal), "symbolic", outcome.detail)
