"""``rft/JSONSchema-v0``: extract a JSON object that matches a JSON Schema from a text."""

from __future__ import annotations

import copy
from typing import Any, Iterable, Mapping

from rftgym.core import TextEnv

from .evaluator import JSONSchemaEvaluator, json_schema_evaluator
from .generator import make_dataset
from .grader import GradingConfig
from .prompts import SYSTEM_PROMPT
from .user_rows import prepare_dataset


class JSONSchemaEnv(TextEnv):
    """Structured output: the prompt gives a JSON Schema and a text; the reply is the JSON.

    Built-in data (default): generated extraction tasks over twelve domains (see ``generator``).

    Args:
        split: ``"train"`` (default) or ``"test"``; the splits are disjoint.
        size: number of generated rows (default 2,400 train / 360 test).
        seed: data seed of the generated rows (default 0).
        domains: restrict to some domains, e.g. ``["invoice", "flight"]``.
        difficulty: 1, 2 or 3, or ``None`` (default) for an even mix.
        dataset: your own rows instead (JSONL path, list or ``Dataset``): each with a ``schema``
            (object, JSON text or path to a ``.json`` file) and the expected object as
            ``ground_truth``; a row without one is graded on schema validity alone.
        grading: a ``GradingConfig`` or dict of its fields (weights, ``require_valid``, limits).
        system_prompt: prepended to rows that have no system message.
        evaluator_timeout: seconds before an evaluation scores 0.
        render_mode: ``"ansi"`` or ``None``.

    ``info`` from ``reset``/``step`` carries the row's ``schema`` (public: it is in the prompt),
    and ``domain`` / ``difficulty`` for generated rows.
    """

    def __init__(self, split: str | None = None, size: int | None = None, seed: int | None = None,
                 domains: Iterable[str] | None = None, difficulty: int | None = None,
                 dataset: Any = None, grading: GradingConfig | Mapping[str, Any] | None = None,
                 system_prompt: str | None = SYSTEM_PROMPT, evaluator_timeout: float | None = 10.0,
                 render_mode: str | None = None):
        if dataset is not None:
            given = [name for name, value in (("split", split), ("size", size), ("seed", seed),
                                              ("domains", domains), ("difficulty", difficulty)) if value is not None]
            if given:
                raise ValueError(f"dataset=... replaces the generated tasks; do not also pass {', '.join(given)}")
            rows = prepare_dataset(dataset)
        else:
            rows = make_dataset(split or "train", size, 0 if seed is None else seed, domains, difficulty)
        evaluator = json_schema_evaluator if grading is None else JSONSchemaEvaluator(GradingConfig.from_any(grading))
        super().__init__(rows, evaluator, system_prompt=system_prompt, evaluator_timeout=evaluator_timeout,
                         render_mode=render_mode)

    def row_info(self, row: dict[str, Any]) -> dict[str, Any]:
        info = {"schema": copy.deepcopy(row["schema"])}
        info.update({key: row[key] for key in ("domain", "difficulty") if key in row})
        return info
