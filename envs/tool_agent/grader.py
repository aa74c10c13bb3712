"""Grading a finished tool-use episode: the final world state and the final answer.

``ToolEpisode`` is what a goal checker receives. ``ShopGrader`` grades ``rft/ToolAgent-v0``:
the writes made (``world_changes`` from the initial to the final world) must equal the task's
goal exactly — every required write and no other — and the final answer must state the expected
facts (``answers.check_answer``). ``CallsAndAnswerChecker`` grades rows that give the expected
calls and/or answer facts in ``ground_truth``.

``RewardConfig`` turns the two checks into a reward: 1.0 only when both hold (default), or a
weighted partial credit.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rftgym.envs.tool_agent.answers import check_answer
from rftgym.envs.tool_agent.toolkit import CallRecord
from rftgym.envs.tool_agent.world import build_world, canonical_changes, world_changes

from rftgym.evaluators import EvaluateResult


@dataclass
class ToolEpisode:
    """A finished episode, as seen by a goal checker.

    Attributes:
        row: the dataset row (its ``ground_truth`` included).
        world: the world after the episode (whatever the world factory built, as the tools left it).
        answer: the final reply without tool calls, or ``None`` when the episode was truncated.
        calls: every attempted tool call in order.
        messages: the whole conversation.
        truncated: whether ``max_turns`` or the tool-call budget ended the episode.
    """

    row: dict[str, Any]
    world: Any
    answer: str | None
    calls: list[CallRecord] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    truncated: bool = False

    @property
    def ground_truth(self) -> Any:
        return self.row.get("ground_truth")

    @property
    def num_calls(self) -> int:
        return len(self.calls)

    @property
    def valid_call_rate(self) -> float:
        """Share of calls that parsed, named a known tool and had schema-valid arguments (1.0 if none)."""
        return sum(c.valid for c in self.calls) / len(self.calls) if self.calls else 1.0

    @property
    def ok_call_rate(self) -> float:
        """Share of calls that returned a result rather than an error (1.0 if none)."""
        return sum(c.ok for c in self.calls) / len(self.calls) if self.calls else 1.0


@dataclass(frozen=True)
class RewardConfig:
    """How the checks become a reward.

    Default: 1.0 when the state and the answer are both right, else 0.0. With
    ``partial_credit=True``: ``(ws*state + wa*answer + wv*valid_call_rate) / (ws + wa + wv)``.
    """

    partial_credit: bool = False
    state_weight: float = 0.5
    answer_weight: float = 0.5
    valid_call_weight: float = 0.0

    def __post_init__(self) -> None:
        weights = (self.state_weight, self.answer_weight, self.valid_call_weight)
        if not all(math.isfinite(w) and w >= 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(f"reward weights must be finite, >= 0 and not all zero, got {weights}")

    def score(self, state_correct: bool, answer_correct: bool, valid_call_rate: float) -> float:
        if not self.partial_credit:
            return float(state_correct and answer_correct)
        total = self.state_weight + self.answer_weight + self.valid_call_weight
        return (self.state_weight * state_correct + self.answer_weight * answer_correct
                + self.valid_call_weight * valid_call_rate) / total


def _counter(records: list) -> Counter:
    return Counter(json.dumps(r, sort_keys=True) for r in records)


def compare_records(actual: list, expected: list) -> tuple[list, list]:
    """``(missing, extra)``: expected records not made, and records made but not expected."""
    have, want = _counter(actual), _counter(expected)
    return ([json.loads(r) for r in (want - have).elements()], [json.loads(r) for r in (have - want).elements()])


def _result(config: RewardConfig, episode: ToolEpisode, state_ok: bool, answer_ok: bool,
            reasons: list[str]) -> EvaluateResult:
    score = config.score(state_ok, answer_ok, episode.valid_call_rate)
    return EvaluateResult(score, "; ".join(reasons) or "state and answer correct",
                          {"state_correct": float(state_ok), "answer_correct": float(answer_ok)})


class ShopGrader:
    """Grades ``rft/ToolAgent-v0`` episodes: writes equal the goal, answer states the facts.

    ``ground_truth = {"goal": [change records], "facts": [fact dicts]}``; rows carry
    ``world_seed`` so the initial world can be rebuilt.
    """

    name = "tool_agent_shop"

    def __init__(self, config: RewardConfig | None = None):
        self.config = config or RewardConfig()

    def __call__(self, episode: ToolEpisode) -> EvaluateResult:
        truth = episode.ground_truth
        before = build_world(episode.row["world_seed"])
        missing, extra = compare_records(world_changes(before, episode.world), canonical_changes(truth["goal"]))
        reasons = []
        if missing:
            reasons.append(f"missing writes {json.dumps(missing)}")
        if extra:
            reasons.append(f"unexpected writes {json.dumps(extra)}")
        answer_ok, why = check_answer(episode.answer, truth["facts"])
        if not answer_ok:
            reasons.append(f"answer: {why}")
        return _result(self.config, episode, not missing and not extra, answer_ok, reasons)


def _normalise(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def call_key(name: str, arguments: Any) -> list:
    """A call as a comparable record ``[name, arguments]`` (``3.0`` and ``3`` compare equal)."""
    return [name, _normalise(arguments)]


class CallsAndAnswerChecker:
    """Grades rows whose ``ground_truth`` lists the expected calls and/or answer facts.

    ``ground_truth = {"calls": [{"name": ..., "arguments": {...}}, ...], "ordered": false,
    "answer": [facts]}`` (both parts optional). The state check passes when the valid calls the
    model made equal ``calls`` (as a multiset, or as a sequence when ``ordered``); the answer
    check passes when the final answer states every fact (numbers, strings or fact dicts, see
    ``answers``). A part that is absent counts as correct.
    """

    name = "tool_calls_and_answer"

    def __init__(self, config: RewardConfig | None = None):
        self.config = config or RewardConfig()

    def __call__(self, episode: ToolEpisode) -> EvaluateResult:
        truth = episode.ground_truth
        if not isinstance(truth, dict) or not ({"calls", "answer"} & set(truth)):
            raise ValueError("ground_truth must be an object with 'calls' and/or 'answer'")
        reasons: list[str] = []
        state_ok = True
        if "calls" in truth:
            made = [call_key(c.name, c.arguments) for c in episode.calls if c.valid]
            expected = [call_key(c["name"], c.get("arguments", {})) for c in truth["calls"]]
            if truth.get("ordered", False):
                state_ok = made == expected
                if not state_ok:
                    reasons.append(f"calls {json.dumps(made)} differ from the expected sequence {json.dumps(expected)}")
            else:
                missing, extra = compare_records(made, expected)
                state_ok = not missing and not extra
                if missing:
                    reasons.append(f"missing calls {json.dumps(missing)}")
                if extra:
                    reasons.append(f"unexpected calls {json.dumps(extra)}")
        answer_ok = True
        if "answer" in truth:
            facts = truth["answer"] if isinstance(truth["answer"], list) else [truth["answer"]]
            answer_ok, why = check_answer(episode.answer, facts)
            if not answer_ok:
                reasons.append(f"answer: {why}")
        return _result(self.config, episode, state_ok, answer_ok, reasons)
