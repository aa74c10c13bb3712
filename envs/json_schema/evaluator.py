"""The JSON-schema evaluator: a picklable callable for rows with a ``schema`` field."""

from __future__ import annotations

from typing import Any

from rftgym.evaluators import EvaluateResult

from .grader import DEFAULT_CONFIG, GradingConfig, grade
from .user_rows import coerce_expected, load_schema


class JSONSchemaEvaluator:
    """Scores the last assistant message against the row's ``schema`` and expected object.

    ``ground_truth`` is the expected value (``None``: grade on schema validity alone). See
    ``grader`` for the score; ``config`` sets its weights and limits. Instances are picklable,
    so they run in process pools.
    """

    def __init__(self, config: GradingConfig | None = None, *, name: str = "json_schema",
                 timeout: float | None = 10.0):
        self.config = GradingConfig.from_any(config)
        self.name = name
        self.timeout = timeout

    def __call__(self, messages: list[dict], ground_truth: Any = None, schema: Any = None,
                 **row_fields: Any) -> EvaluateResult:
        if schema is None:
            raise ValueError("the row has no 'schema' field; JSON-schema grading needs one")
        if not messages or messages[-1].get("role") != "assistant":
            return EvaluateResult(0.0, "the conversation does not end with an assistant reply",
                                  {"parsed": 0.0, "valid": 0.0})
        schema = load_schema(schema)
        return grade(messages[-1].get("content"), schema, coerce_expected(ground_truth, schema), self.config)

    def __repr__(self) -> str:
        return f"JSONSchemaEvaluator({self.config})"


json_schema_evaluator = JSONSchemaEvaluator(DEFAULT_CONFIG)
