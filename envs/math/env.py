"""``rft/Math-v0``: arithmetic and word problems (built in, levels 1-5) or your own math data."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

from rftgym.core import TextEnv
from rftgym.datasets import Dataset, DatasetError, load_dataset
from rftgym.envs.math.equivalence import answer_from_ground_truth
from rftgym.envs.math.evaluator import MathEvaluator
from rftgym.envs.math.extraction import DEFAULT_ANSWER_FORMATS
from rftgym.envs.math.generator import LEVELS, SPLITS, build_dataset

DEFAULT_SYSTEM_PROMPT = "Solve the problem. Give the final answer in <answer></answer> tags."

_checked_datasets: weakref.WeakSet[Dataset] = weakref.WeakSet()


def _levels(difficulty: Any) -> tuple[int, ...]:
    levels = (difficulty,) if isinstance(difficulty, int) and not isinstance(difficulty, bool) else difficulty
    try:
        levels = tuple(levels)
    except TypeError:
        raise ValueError(f"difficulty must be a level in {LEVELS} or a list of levels, got {difficulty!r}") from None
    bad = [lv for lv in levels if isinstance(lv, bool) or lv not in LEVELS]
    if not levels or bad:
        raise ValueError(f"difficulty must be a level in {LEVELS} or a list of levels, got {difficulty!r}")
    return tuple(sorted(set(levels)))


def _check_ground_truths(dataset: Dataset) -> None:
    """Every row needs a usable ground truth; fail at load time, naming the row."""
    if dataset in _checked_datasets:
        return
    for i in range(len(dataset)):
        row = dataset[i]
        if "ground_truth" not in row:
            raise DatasetError(f"{dataset.source}: row {i} has no 'ground_truth' (the expected answer)")
        try:
            answer_from_ground_truth(row["ground_truth"])
        except ValueError as exc:
            raise DatasetError(f"{dataset.source}: row {i}: {exc}") from None
    _checked_datasets.add(dataset)


class MathEnv(TextEnv):
    """Single-turn math problems scored 1.0 for a correct final answer, else 0.0.

    Args:
        split: ``"train"`` or ``"test"`` (built-in data; the two never share a problem).
        difficulty: a level 1-5 or a list of levels (built-in data). Level 1 is one step on two
            one-digit numbers; level 5 needs four or more steps.
        size: problems per level (default 5,000 for train, 500 for test); with ``dataset``, keep
            only the first ``size`` rows.
        seed: seed of the built-in problem generator (``reset(seed=...)`` seeds the row order).
        dataset: your own rows (JSONL path, list of rows or ``Dataset``) with ``ground_truth`` a
            number, a LaTeX expression or a GSM8K-style solution ending in ``#### 42``.
        system_prompt: prepended to rows without a system message; states the answer format.
        answer_formats, allow_last_number, format_weight, symbolic, symbolic_timeout: see
            ``MathEvaluator``.
        evaluator_timeout, render_mode: see ``TextEnv``.
    """

    def __init__(self, split: str | None = None, difficulty: int | Sequence[int] | None = None,
                 size: int | None = None, seed: int = 0, dataset: Any = None, *,
                 system_prompt: str | None = DEFAULT_SYSTEM_PROMPT,
                 answer_formats: Sequence[str] = DEFAULT_ANSWER_FORMATS, allow_last_number: bool = False,
                 format_weight: float = 0.0, symbolic: bool = True, symbolic_timeout: float = 3.0,
                 evaluator_timeout: float | None = 30.0, render_mode: str | None = None):
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise ValueError(f"size must be a positive int, got {size!r}")
        if dataset is not None:
            if split is not None or difficulty is not None:
                raise ValueError("split and difficulty select the built-in problems; they cannot be "
                                 "combined with dataset=...")
            data = load_dataset(dataset)
            _check_ground_truths(data)
            if size is not None and size < len(data):
                data = Dataset(data.rows[:size], source=f"{data.source}[:{size}]")
        else:
            split = "train" if split is None else split
            if split not in SPLITS:
                raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
            if isinstance(seed, bool) or not isinstance(seed, int):
                raise ValueError(f"seed must be an int, got {seed!r}")
            data = build_dataset(split, _levels(1 if difficulty is None else difficulty), size, seed)
        evaluator = MathEvaluator(answer_formats, allow_last_number, format_weight, symbolic, symbolic_timeout)
        super().__init__(data, evaluator, system_prompt=system_prompt,
                         evaluator_timeout=evaluator_timeout, render_mode=render_mode)

    def row_info(self, row: dict[str, Any]) -> dict[str, Any]:
        """The problem's level and topic (built-in data)."""
        return {key: row[key] for key in ("level", "topic") if key in row}
