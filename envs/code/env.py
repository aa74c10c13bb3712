"""``rft/Code-v0``: write a Python function; the reward is the fraction of its tests it passes.

Splits: ``"train"`` (536 generated problems, :mod:`rftgym.envs.code.problems`) and ``"test"``
(HumanEval, 164 problems). ``dataset=`` takes your own rows instead::

    {"messages": [{"role": "user", "content": "Write add(a, b) ..."}],
     "entry_point": "add",
     "prompt": "def add(a, b):\\n    \\"\\"\\"Return a + b.\\"\\"\\"\\n",   # optional code prompt
     "ground_truth": {"tests": [{"input": "1, 2", "output": "3"}, {"args": [0, 0], "expected": 0}],
                      "check": "def check(candidate):\\n    assert candidate(2, 2) == 4\\n"}}

Replies are run in the sandbox (:mod:`rftgym.envs.code.sandbox`); the evaluator is picklable and
uses one shared pool of sandboxed interpreters per process, safe to call from many threads.
"""

from __future__ import annotations

import functools
from typing import Any

from rftgym.core import TextEnv
from rftgym.datasets import Dataset, DatasetError, load_dataset
from rftgym.envs.code.grader import CodeEvaluator, CodeTask
from rftgym.envs.code.sandbox import SandboxConfig
from rftgym.envs.code.testspec import SpecError

SPLITS = ("train", "test")


@functools.lru_cache(maxsize=8)
def _split_dataset(split: str, instruction: str | None) -> Dataset:
    if split == "train":
        from rftgym.envs.code.problems import train_rows

        rows = train_rows(instruction)
    else:
        from rftgym.envs.code.humaneval import INSTRUCTION, humaneval_rows

        rows = humaneval_rows(instruction or INSTRUCTION)
    return load_dataset(rows)


def validate_code_rows(dataset: Dataset) -> None:
    """Check every row has an entry point and well-formed tests; raise DatasetError naming the row."""
    for i in range(len(dataset)):
        row = dataset[i]
        try:
            CodeTask.from_row(row.get("ground_truth"), row)
        except SpecError as exc:
            raise DatasetError(f"{dataset.source}: row {i} (task_id {dataset.task_id(i)!r}): {exc}") from None


class CodeEnv(TextEnv):
    """Write a Python function; graded by running its tests in a sandbox.

    Args:
        split: ``"train"`` (generated problems) or ``"test"`` (HumanEval). Ignored with ``dataset``.
        dataset: your own rows (list, JSONL path or Dataset) with ``entry_point``, optional
            ``prompt`` and ``ground_truth`` tests (see the module docstring).
        sandbox: a :class:`SandboxConfig` or dict of its fields (mode, limits, ``require_full_sandbox``).
        timeout: wall-clock seconds for running one reply's tests (default: the sandbox's 5 s).
        instruction: template for the user message of the built-in splits, with ``{prompt}``.
        system_prompt, render_mode: as for :class:`~rftgym.core.TextEnv`.
        evaluator_timeout: an extra thread-based limit; ``None`` by default because the sandbox
            enforces its own limits and waiting for a free sandbox must not count as a timeout.
    """

    def __init__(self, split: str = "train", dataset: Any = None, *, sandbox: SandboxConfig | dict | None = None,
                 timeout: float | None = None, instruction: str | None = None, system_prompt: str | None = None,
                 evaluator_timeout: float | None = None, render_mode: str | None = None):
        if dataset is None:
            if split not in SPLITS:
                raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
            if instruction is not None and "{prompt}" not in instruction:
                raise ValueError("instruction must contain '{prompt}', where the function prompt goes")
            data = _split_dataset(split, instruction)
        else:
            data = load_dataset(dataset)
            validate_code_rows(data)
        self.split = split if dataset is None else "custom"
        evaluator = CodeEvaluator(sandbox, timeout)
        super().__init__(data, evaluator, system_prompt=system_prompt, evaluator_timeout=evaluator_timeout,
                         render_mode=render_mode)

    def row_info(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"entry_point": row.get("entry_point")}
