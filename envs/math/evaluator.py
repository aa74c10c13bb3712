"""The math evaluator: 1.0 when the reply's final answer equals the expected one, else 0.0.

Metrics: ``correct`` (the answer is right) and ``formatted`` (an answer was found in one of
the requested formats, not by the last-number fallback). With ``format_weight = w > 0`` a wrong
but formatted answer scores ``w``, so a model is rewarded for learning the format first.

Use it with your own data::

    env = gym.make("rft/Custom-v0", dataset="rows.jsonl",
                   evaluator="rftgym.envs.math.evaluator:math_evaluator")
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rftgym.envs.math.equivalence import answer_from_ground_truth, answers_equivalent
from rftgym.envs.math.extraction import DEFAULT_ANSWER_FORMATS, check_formats, extract_answer
from rftgym.evaluators import EvaluateResult


def _short(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def reply_text(messages: Sequence[Any]) -> str | None:
    """The model's reply: the content of the last message when it is an assistant message."""
    if not messages:
        return None
    last = messages[-1]
    if not isinstance(last, dict) or last.get("role") != "assistant":
        return None
    content = last.get("content")
    if isinstance(content, list):  # OpenAI content parts
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict)
                          and isinstance(part.get("text"), str))
    return content if isinstance(content, str) else None


class MathEvaluator:
    """Score a reply against a numeric, LaTeX or GSM8K-style (``#### 42``) ground truth.

    Args:
        answer_formats: where to look for the answer, in order (see ``extraction.py``).
        allow_last_number: fall back to the last number in the reply (not counted as formatted).
        format_weight: score of a wrong answer given in a requested format (0 <= w < 1).
        symbolic: compare non-numeric answers with math-verify (in a killable worker process).
        symbolic_timeout: seconds before a math-verify check is killed and scores 0.
    """

    def __init__(self, answer_formats: Sequence[str] = DEFAULT_ANSWER_FORMATS,
                 allow_last_number: bool = False, format_weight: float = 0.0, symbolic: bool = True,
                 symbolic_timeout: float = 3.0, name: str = "math_answer"):
        self.answer_formats = check_formats(answer_formats)
        self.allow_last_number = bool(allow_last_number)
        format_weight = float(format_weight)
        if not (math.isfinite(format_weight) and 0.0 <= format_weight < 1.0):
            raise ValueError(f"format_weight must be in [0, 1), got {format_weight}")
        self.format_weight = format_weight
        self.symbolic = bool(symbolic)
        symbolic_timeout = float(symbolic_timeout)
        if not (math.isfinite(symbolic_timeout) and symbolic_timeout > 0):
            raise ValueError(f"symbolic_timeout must be a positive number of seconds, got {symbolic_timeout}")
        self.symbolic_timeout = symbolic_timeout
        self.name = name
        self.timeout = None

    def __repr__(self) -> str:
        return (f"MathEvaluator(answer_formats={self.answer_formats}, allow_last_number="
                f"{self.allow_last_number}, format_weight={self.format_weight})")

    def __call__(self, messages: list[dict], ground_truth: Any = None, **row_fields: Any) -> EvaluateResult:
        expected = answer_from_ground_truth(ground_truth)  # a bad ground truth is the dataset's bug
        reply = reply_text(messages)
        if reply is None:
            return EvaluateResult(0.0, "no assistant reply to score", {"correct": 0.0, "formatted": 0.0})
        found = extract_answer(reply, self.answer_formats, self.allow_last_number)
        if found is None:
            return EvaluateResult(
                0.0, f"no answer found (looked for {', '.join(self.answer_formats)}"
                + (", last number)" if self.allow_last_number else ")"),
                {"correct": 0.0, "formatted": 0.0})
        formatted = 1.0 if found.formatted else 0.0
        verdict = answers_equivalent(expected, found.text, symbolic=self.symbolic,
                                     symbolic_timeout=self.symbolic_timeout)
        how = f"{verdict.method}" + (f"; {verdict.detail}" if verdict.detail else "")
        if verdict.equal:
            return EvaluateResult(1.0, f"correct: {_short(found.text)} from {found.format} ({how})",
                                  {"correct": 1.0, "formatted": formatted})
        return EvaluateResult(self.format_weight * formatted,
                              f"wrong: {_short(found.text)} from {found.format}, expected "
                              f"{_short(expected)} ({how})", {"correct": 0.0, "formatted": formatted})


math_evaluator = MathEvaluator()
"""The default evaluator: all answer formats, no last-number fallback, no format credit."""
