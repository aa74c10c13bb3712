"""``rft/ToolAgent-v0``: multi-turn tool use in a small shop and calendar world.

Each episode builds its own world (``world.build_world``) from the task's seed; the model calls
the shop and utility tools (``tools.SHOP_TOOLS``) over several turns and ends with a final answer.
The reward checks the final world state against the task's goal and the answer against the
expected facts (``grader.ShopGrader``).

Example::

    env = gym.make("rft/ToolAgent-v0", split="test", levels=[1, 2])
    messages, info = env.reset(seed=0)      # info["tools"]: OpenAI function specs
    messages, reward, terminated, truncated, info = env.step(
        '<tool_call>{"name": "get_order", "arguments": {"order_id": 1042}}</tool_call>')
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any, Mapping

from rftgym.envs.tool_agent.grader import RewardConfig, ShopGrader
from rftgym.envs.tool_agent.tasks import Task, generate_tasks, normalize_levels
from rftgym.envs.tool_agent.tool_env import TOOL_PROMPT_STYLES, ToolEnv, tools_prompt
from rftgym.envs.tool_agent.tools import SHOP_TOOLSET, WEEKDAYS
from rftgym.envs.tool_agent.world import World, build_world

from rftgym.datasets import Dataset

SHOP_PROMPT = """You are the customer-support assistant of an online shop. Today is {today}. Prices are \
in US dollars.
Use the tools to look up customers, orders, products and appointment slots and to make changes; never \
guess ids, amounts or dates. Make only the changes the request asks for.
When the request is handled, reply without any tool call: that reply is your final answer. State the \
facts asked for (amounts, dates, times, statuses) plainly."""


def shop_system_prompt(today: str, tools_in_prompt: bool = True, style: str = "json") -> str:
    """The system prompt of a task whose world's date is ``today`` (ISO)."""
    day = dt.date.fromisoformat(today)
    text = SHOP_PROMPT.format(today=f"{WEEKDAYS[day.weekday()]} {today}")
    return text + "\n\n" + tools_prompt(SHOP_TOOLSET.specs, style) if tools_in_prompt else text


def task_row(task: Task, tools_in_prompt: bool = True, style: str = "json") -> dict[str, Any]:
    """The dataset row of a task (its goal and facts are the private ``ground_truth``)."""
    return {"task_id": task.task_id,
            "messages": [{"role": "system", "content": shop_system_prompt(task.today, tools_in_prompt, style)},
                         {"role": "user", "content": task.prompt}],
            "ground_truth": {"goal": task.goal, "facts": task.facts},
            "world_seed": task.world_seed, "level": task.level, "kind": task.kind}


@functools.lru_cache(maxsize=16)
def _dataset(split: str, levels: tuple[int, ...], size: int | None, seed: int, tools_in_prompt: bool,
             style: str) -> Dataset:
    tasks = generate_tasks(split, levels, size, seed)
    return Dataset([task_row(task, tools_in_prompt, style) for task in tasks], source=f"rft/ToolAgent-v0[{split}]")


def shop_world(row: Mapping[str, Any]) -> World:
    """The world factory of ``rft/ToolAgent-v0``: the task's world, built fresh."""
    return build_world(row["world_seed"])


def reward_config(partial_credit: bool, reward_weights: Mapping[str, float] | None) -> RewardConfig:
    weights = dict(reward_weights or {})
    unknown = set(weights) - {"state", "answer", "valid_calls"}
    if unknown:
        raise ValueError(f"unknown reward_weights {sorted(unknown)}; use 'state', 'answer' and 'valid_calls'")
    return RewardConfig(partial_credit, state_weight=weights.get("state", 0.5),
                        answer_weight=weights.get("answer", 0.5), valid_call_weight=weights.get("valid_calls", 0.0))


class ToolAgentEnv(ToolEnv):
    """Shop and calendar tool-use tasks (``rft/ToolAgent-v0``).

    Args:
        split: ``"train"`` or ``"test"`` (disjoint prompts).
        levels: difficulty level(s) 1-3 = tool calls needed (1, 2, 3-6); ``None`` for all.
        size: number of tasks (default 2000 train, 200 test).
        seed: task-generation seed.
        max_turns: replies per episode before truncation.
        max_tool_calls: tool-call budget per episode; going over truncates.
        partial_credit: ``False``: reward 1.0 only when the final state and the answer are both
            right; ``True``: weighted credit (``reward_weights``).
        reward_weights: ``{"state": 0.5, "answer": 0.5, "valid_calls": 0.0}`` for partial credit.
        tools_in_system_prompt: also list the tools in the system prompt (for chat templates that
            ignore ``tools=``); ``info["tools"]`` always holds them.
        tool_prompt_style: ``"json"`` (full specs, about 2,300 SmolLM2 tokens) or ``"compact"``
            (one signature line per tool, about 950 tokens).
    """

    def __init__(self, split: str = "train", levels: int | list[int] | tuple[int, ...] | None = None,
                 size: int | None = None, seed: int = 0, *, max_turns: int = 10, max_tool_calls: int = 12,
                 partial_credit: bool = False, reward_weights: Mapping[str, float] | None = None,
                 tools_in_system_prompt: bool = True, tool_prompt_style: str = "json",
                 render_mode: str | None = None):
        self.tasks: tuple[Task, ...] = generate_tasks(split, levels, size, seed)
        self.split, self.levels = split, normalize_levels(levels)
        if tool_prompt_style not in TOOL_PROMPT_STYLES:
            raise ValueError(f"tool_prompt_style must be one of {TOOL_PROMPT_STYLES}, got {tool_prompt_style!r}")
        dataset = _dataset(split, self.levels, size, seed, tools_in_system_prompt, tool_prompt_style)
        super().__init__(dataset, SHOP_TOOLSET, world_factory=shop_world,
                         goal_checker=ShopGrader(reward_config(partial_credit, reward_weights)),
                         max_turns=max_turns, max_tool_calls=max_tool_calls, tools_in_system_prompt=False,
                         render_mode=render_mode)
        self.tools_in_system_prompt, self.tool_prompt_style = tools_in_system_prompt, tool_prompt_style

    def row_info(self, row: dict[str, Any]) -> dict[str, Any]:
        return {**super().row_info(row), "level": row["level"], "kind": row["kind"]}

    @property
    def task(self) -> Task | None:
        """The current episode's task (with its oracle plan), or ``None`` before the first reset."""
        return None if self._index is None else self.tasks[self._index]
