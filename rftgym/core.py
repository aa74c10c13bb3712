"""The text-environment contract: ``TextEnv`` (single turn) and ``MultiTurnTextEnv``.

Observation: the conversation the model sees (a list of ``{"role", "content"}`` dicts).
Action: the model's reply (a ``str``). The reward is the evaluator's score in [0, 1], and
``info["evaluation"]`` holds ``{"score", "reason", "metrics"}``. The ground truth never appears in
an observation or an info dict.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Mapping

import gymnasium as gym
import numpy as np

from rftgym.datasets import Dataset, load_dataset
from rftgym.evaluators import EvaluateResult, as_evaluator, evaluate_safely
from rftgym.spaces import ChatSpace, TextSpace

# Row fields that are never passed to the model or exposed in ``info``.
PRIVATE_FIELDS = ("messages", "ground_truth")


@dataclass
class EvaluationRequest:
    """Everything needed to score one reply, picklable so it can run in another process."""

    evaluator: Any
    messages: list[dict[str, Any]]
    ground_truth: Any
    row_fields: dict[str, Any]
    timeout: float | None

    def run(self) -> EvaluateResult:
        return evaluate_safely(self.evaluator, self.messages, self.ground_truth, self.row_fields,
                               self.timeout)


class TextEnv(gym.Env):
    """A single-turn text environment over a dataset of rows and an evaluator.

    Args:
        dataset: a JSONL path, a list of row dicts or a ``Dataset``.
        evaluator: a callable ``fn(messages, ground_truth, **row_fields)`` or ``"module:fn"``.
        system_prompt: prepended as a system message to rows that have none.
        evaluator_timeout: seconds before a slow evaluation scores 0 (``None``: no limit).
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, dataset: Any, evaluator: Any, *, system_prompt: str | None = None,
                 evaluator_timeout: float | None = 30.0, render_mode: str | None = None):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.dataset: Dataset = load_dataset(dataset)
        self.evaluator = as_evaluator(evaluator) if evaluator is not None else None
        self.system_prompt = system_prompt
        self.evaluator_timeout = evaluator_timeout
        self.render_mode = render_mode
        self.observation_space = ChatSpace()
        self.action_space = TextSpace()
        self._order: np.ndarray | None = None
        self._cursor = 0
        self._row: dict[str, Any] | None = None
        self._index: int | None = None
        self._messages: list[dict[str, Any]] = []
        self._done = True

    # --- episode bookkeeping -------------------------------------------------------------
    def _next_index(self) -> int:
        if self._order is None or self._cursor >= len(self._order):
            self._order = self.np_random.permutation(len(self.dataset))
            self._cursor = 0
        index = int(self._order[self._cursor])
        self._cursor += 1
        return index

    def _select(self, options: Mapping[str, Any] | None) -> int:
        options = dict(options or {})
        unknown = set(options) - {"index", "task_id"}
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; use 'index' or 'task_id'")
        if "index" in options:
            index = options["index"]
            if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
                raise TypeError(f"options['index'] must be an int, got {type(index).__name__}")
            if not 0 <= index < len(self.dataset):
                raise IndexError(f"options['index']={index} is out of range for {len(self.dataset)} rows")
            return int(index)
        if "task_id" in options:
            return self.dataset.index_of(options["task_id"])
        return self._next_index()

    def reset(self, *, seed: int | None = None, options: Mapping[str, Any] | None = None):
        """Start an episode on a dataset row; returns ``(messages, info)``."""
        if seed is not None:
            self._order = None  # a new seed restarts the shuffled order
        super().reset(seed=seed)
        self._index = self._select(options)
        self._row = self.dataset[self._index]
        messages = copy.deepcopy(self._row["messages"])
        if self.system_prompt and messages[0]["role"] != "system":
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        self._messages = messages
        self._done = False
        self.begin_episode(self._row)
        return copy.deepcopy(self._messages), self._info()

    def _info(self) -> dict[str, Any]:
        assert self._row is not None and self._index is not None
        return {"index": self._index, "task_id": self.dataset.task_id(self._index), **self.row_info(self._row)}

    def row_info(self, row: dict[str, Any]) -> dict[str, Any]:
        """Public per-row information for ``info`` (override to expose e.g. tool specs)."""
        return {}

    def row_fields(self, row: dict[str, Any]) -> dict[str, Any]:
        """The row fields passed to the evaluator as keyword arguments."""
        return {k: v for k, v in row.items() if k not in PRIVATE_FIELDS}

    def begin_episode(self, row: dict[str, Any]) -> None:
        """Hook for per-episode state; called at the end of ``reset``."""

    # --- stepping ------------------------------------------------------------------------
    def _accept(self, action: Any) -> list[dict[str, Any]]:
        if self._done or self._row is None:
            raise RuntimeError("the episode is over (or was never started): call reset() first")
        if not isinstance(action, str):
            raise TypeError(f"the action must be the model's reply as a str, got {type(action).__name__}")
        self._messages.append({"role": "assistant", "content": action})
        return self._messages

    def evaluation_request(self, action: str) -> EvaluationRequest:
        """Record the reply and return the (picklable) request that scores it."""
        messages = self._accept(action)
        assert self._row is not None
        return EvaluationRequest(self.evaluator, copy.deepcopy(messages), self._row.get("ground_truth"),
                                 self.row_fields(self._row), self.evaluator_timeout)

    def complete_step(self, result: EvaluateResult):
        """Finish a step with its evaluation; returns the Gymnasium step tuple."""
        self._done = True
        info = self._info()
        info["evaluation"] = result.to_dict()
        return copy.deepcopy(self._messages), float(result.score), True, False, info

    def step(self, action: str):
        """Score the reply; the episode ends (``terminated=True``)."""
        return self.complete_step(self.evaluation_request(action).run())

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        return "\n".join(f"[{m['role']}] {m['content']}" for m in self._messages)


class MultiTurnTextEnv(TextEnv):
    """A multi-turn text environment: the env answers each reply until the episode ends.

    Subclasses implement ``respond(reply) -> (env_messages, done[, truncated])`` and may override
    ``evaluate_episode``. After ``max_turns`` replies without an end, or when ``respond`` says so,
    the episode is truncated (``truncated=True``) and evaluated as it stands.
    """

    def __init__(self, dataset: Any, evaluator: Any = None, *, max_turns: int = 8, **kwargs: Any):
        if max_turns < 1:
            raise ValueError(f"max_turns must be >= 1, got {max_turns}")
        super().__init__(dataset, evaluator, **kwargs)
        self.max_turns = max_turns
        self.turns = 0

    def begin_episode(self, row: dict[str, Any]) -> None:
        self.turns = 0

    def respond(self, reply: str) -> tuple[list[dict[str, Any]], bool] | tuple[list[dict[str, Any]], bool, bool]:
        """Answer ``reply``: return ``(env_messages, done)``, or ``(env_messages, done, truncated)``
        to end the episode as truncated (e.g. a tool-call budget ran out)."""
        raise NotImplementedError

    def evaluate_episode(self, messages: list[dict[str, Any]]) -> EvaluateResult:
        """Score the finished episode (default: the evaluator on the whole conversation)."""
        assert self._row is not None
        return evaluate_safely(self.evaluator, copy.deepcopy(messages), self._row.get("ground_truth"),
                               self.row_fields(self._row), self.evaluator_timeout)

    def step(self, action: str):
        messages = self._accept(action)
        self.turns += 1
        answer = self.respond(action)
        env_messages, done = answer[0], bool(answer[1])
        truncated = len(answer) > 2 and bool(answer[2])
        if truncated:
            done = False
        elif not done and self.turns >= self.max_turns:
            truncated = True
        self._messages.extend(env_messages)
        if done or truncated:
            obs, reward, _, _, info = self.complete_step(self.evaluate_episode(self._messages))
            info["turn"] = self.turns
            return obs, reward, done, truncated, info
        info = self._info()
        info["turn"] = self.turns
        return copy.deepcopy(self._messages), 0.0, False, False, info
