"""``rft/JSONSchema-v0``: structured-output extraction graded against a JSON Schema.

``JSONSchemaEnv`` (the environment), ``make_dataset`` (the generated tasks), ``grade`` and
``JSONSchemaEvaluator`` (the reward), ``parse_reply`` (safe reply parsing) and ``DOMAINS``.
"""

from .domains import DOMAINS
from .env import JSONSchemaEnv
from .evaluator import JSONSchemaEvaluator, json_schema_evaluator
from .field_match import FieldScores, field_scores
from .generator import make_dataset
from .grader import GradingConfig, grade
from .parsing import JSONReplyError, ParseLimits, parse_reply
from .prompts import SYSTEM_PROMPT

__all__ = [
    "DOMAINS", "FieldScores", "GradingConfig", "JSONReplyError", "JSONSchemaEnv", "JSONSchemaEvaluator",
    "ParseLimits", "SYSTEM_PROMPT", "field_scores", "grade", "json_schema_evaluator", "make_dataset",
    "parse_reply",
]
