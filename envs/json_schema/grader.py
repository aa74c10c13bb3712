"""Grading a reply against a JSON Schema and an expected object.

Steps, each reported in ``metrics``:

1. ``parsed`` - the reply holds exactly one JSON value, raw or in one fenced block
   (``parsing.parse_reply``); otherwise the score is 0 and ``reason`` says why.
2. ``valid`` - the value validates against the schema, formats included
   (``validation.validation_errors``); the first errors go into ``reason``.
3. ``field_precision`` / ``field_recall`` / ``field_f1`` - leaf-by-leaf credit against the
   expected object (``field_match.field_scores``); absent when the row has no expected object.

The score combines them with ``GradingConfig`` weights::

    content = field_f1 if there is an expected object else valid
    if require_valid and not valid: content = 0
    score = (w_parsed * parsed + w_valid * valid + w_fields * content) / (w_parsed + w_valid + w_fields)

The default (weights 0 / 0 / 1, ``require_valid=True``) is: 0 unless the reply is valid against
the schema, else the field F1 (1.0 for a valid reply when there is no expected object).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from rftgym.evaluators import EvaluateResult

from .field_match import field_scores
from .parsing import DEFAULT_LIMITS, JSONReplyError, ParseLimits, parse_reply
from .validation import validation_errors


@dataclass(frozen=True)
class GradingConfig:
    """Weights of the score's parts and the limits on replies (see the module docstring)."""

    parsed_weight: float = 0.0
    valid_weight: float = 0.0
    fields_weight: float = 1.0
    require_valid: bool = True
    max_reported_errors: int = 3
    limits: ParseLimits = field(default_factory=lambda: DEFAULT_LIMITS)

    def __post_init__(self) -> None:
        weights = (self.parsed_weight, self.valid_weight, self.fields_weight)
        for name, weight in zip(("parsed_weight", "valid_weight", "fields_weight"), weights):
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) \
                    or weight < 0:
                raise ValueError(f"GradingConfig.{name} must be a finite number >= 0, got {weight!r}")
        if sum(weights) <= 0:
            raise ValueError("GradingConfig weights sum to zero; give at least one part a positive weight")
        if not isinstance(self.limits, ParseLimits):
            raise TypeError(f"GradingConfig.limits must be a ParseLimits, got {type(self.limits).__name__}")

    @classmethod
    def from_any(cls, value: GradingConfig | Mapping[str, Any] | None) -> GradingConfig:
        """A config from ``None`` (defaults), a ``GradingConfig`` or a dict of its fields."""
        if value is None:
            return DEFAULT_CONFIG
        if isinstance(value, GradingConfig):
            return value
        if not isinstance(value, Mapping):
            raise TypeError(f"grading must be a GradingConfig or a dict, got {type(value).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(value) - known
        if unknown:
            raise ValueError(f"unknown grading option(s) {sorted(unknown)}; known: {sorted(known)}")
        options = dict(value)
        if isinstance(options.get("limits"), Mapping):
            options["limits"] = ParseLimits(**options["limits"])
        return cls(**options)


DEFAULT_CONFIG = GradingConfig()


def grade(reply: Any, schema: Any, expected: Any = None, config: GradingConfig = DEFAULT_CONFIG) -> EvaluateResult:
    """Score one reply against ``schema`` and, if given, the ``expected`` value.

    ``expected=None`` means there is no expected object: the reply is graded on validity alone.
    Raises ``jsonschema.SchemaError`` if ``schema`` itself is invalid.
    """
    has_expected = expected is not None
    metrics: dict[str, float] = {"parsed": 0.0, "valid": 0.0}
    if has_expected:
        metrics.update(field_precision=0.0, field_recall=0.0, field_f1=0.0)
    try:
        value = parse_reply(reply, config.limits).value
    except JSONReplyError as exc:
        return EvaluateResult(0.0, f"no usable JSON: {exc}", metrics)

    errors = validation_errors(value, schema, config.max_reported_errors)
    valid = not errors
    metrics.update(parsed=1.0, valid=float(valid))
    reasons = ["valid against the schema" if valid else "invalid against the schema: " + "; ".join(errors)]
    if has_expected:
        scores = field_scores(value, expected, schema)
        metrics.update(field_precision=scores.precision, field_recall=scores.recall, field_f1=scores.f1)
        content = scores.f1
        reasons.append(scores.summary())
    else:
        content = float(valid)
    if config.require_valid and not valid:
        content = 0.0
        reasons.append("no field credit for an invalid reply")
    total = config.parsed_weight + config.valid_weight + config.fields_weight
    score = (config.parsed_weight + config.valid_weight * valid + config.fields_weight * content) / total
    return EvaluateResult(min(1.0, max(0.0, score)), "; ".join(reasons), metrics)
