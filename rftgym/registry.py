"""Registration of every ``rft/*`` environment id with Gymnasium."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from rftgym.vector import group_vector_entry_point


@dataclass(frozen=True)
class EnvInfo:
    id: str
    entry_point: str
    summary: str
    kwargs: dict[str, Any] = field(default_factory=dict)


ENVS: tuple[EnvInfo, ...] = (
    EnvInfo("rft/Math-v0", "rftgym.envs.math.env:MathEnv",
            "Arithmetic and grade-school word problems, levels 1-5; exact and symbolic answer checking"),
    EnvInfo("rft/ReasoningGym-v0", "rftgym.envs.reasoning_gym.env:ReasoningGymEnv",
            "Any reasoning-gym task (or a weighted mix) with its own answer scorer"),
    EnvInfo("rft/JSONSchema-v0", "rftgym.envs.json_schema.env:JSONSchemaEnv",
            "Structured output: extract a JSON object matching a JSON Schema from a text"),
    EnvInfo("rft/Code-v0", "rftgym.envs.code.env:CodeEnv",
            "Write a Python function; graded by running tests in a sandbox (HumanEval test split)"),
    EnvInfo("rft/ToolAgent-v0", "rftgym.envs.tool_agent.env:ToolAgentEnv",
            "Multi-turn tool use in a small shop/calendar world; graded on final state and answer"),
    EnvInfo("rft/Custom-v0", "rftgym.custom:CustomEnv",
            "Your own JSONL dataset and evaluator function"),
)


def register_envs() -> None:
    """Register all ``rft/*`` ids (idempotent). Called by ``import rftgym``."""
    for info in ENVS:
        if info.id in gym.registry:
            continue
        gym.register(
            id=info.id,
            entry_point=info.entry_point,
            vector_entry_point=functools.partial(group_vector_entry_point, info.id),
            kwargs=dict(info.kwargs),
            disable_env_checker=True,
        )


def list_envs() -> dict[str, str]:
    """All registered ``rft/*`` ids with one-line summaries."""
    return {info.id: info.summary for info in ENVS}
