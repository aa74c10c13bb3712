"""``rft/ReasoningGym-v0``: any reasoning-gym task, or a weighted mix, scored by its own checker.

reasoning-gym (Apache-2.0) generates its 100+ tasks procedurally from a seed, offline. It is
an optional extra: ``pip install "rftgym[reasoning-gym]"``.

    gym.make("rft/ReasoningGym-v0", task="chain_sum", min_terms=2, max_terms=2, max_digits=1)
    gym.make("rft/ReasoningGym-v0", tasks={"chain_sum": 2.0, "basic_arithmetic": 1.0})
    gym.make("rft/ReasoningGym-v0", tasks=[{"name": "leg_counting", "weight": 1,
                                            "config": {"max_animals": 3}}])
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import math
from collections.abc import Mapping
from typing import Any

from rftgym.core import TextEnv
from rftgym.datasets import Dataset
from rftgym.evaluators import EvaluateResult

INSTALL_HINT = 'pip install "rftgym[reasoning-gym]"'
DEFAULT_SYSTEM_PROMPT = (
    "Answer the question. Put only the final answer inside <answer></answer> tags, "
    "for example <answer>42</answer>."
)


def import_reasoning_gym():
    """Import reasoning-gym, or fail with the install command."""
    try:
        import reasoning_gym
    except ImportError as exc:
        raise ImportError(f"rft/ReasoningGym-v0 needs the reasoning-gym package: {INSTALL_HINT} "
                          f"({exc})") from None
    return reasoning_gym


def task_names() -> list[str]:
    """Every task reasoning-gym can generate."""
    import_reasoning_gym()
    from reasoning_gym.factory import DATASETS

    return sorted(name for name in DATASETS if name != "composite")


def _check_task(name: Any) -> None:
    names = task_names()
    if not isinstance(name, str) or name not in names:
        close = difflib.get_close_matches(str(name), names, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown reasoning-gym task {name!r}{hint} ({len(names)} tasks: "
                         "see rftgym.envs.reasoning_gym.env.task_names())")


def _check_config(name: str, config: Mapping[str, Any]) -> None:
    from reasoning_gym.factory import DATASETS

    fields = [f.name for f in dataclasses.fields(DATASETS[name][1])]
    unknown = sorted(set(config) - set(fields))
    if unknown:
        options = [f for f in fields if f not in ("size", "seed")]
        raise ValueError(f"reasoning-gym task {name!r} has no option(s) {unknown}; "
                         f"its options are {options}")
    if "size" in config or "seed" in config:
        raise ValueError(f"give size and seed to the environment, not in the config of task {name!r}")


def normalize_tasks(task: str | None, tasks: Any, task_config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The task mix as ``[{"name", "weight", "config"}, ...]`` (validated)."""
    if tasks is None:
        name = "chain_sum" if task is None else task
        _check_task(name)
        _check_config(name, task_config)
        return [{"name": name, "weight": 1.0, "config": dict(task_config)}]
    if task is not None or task_config:
        raise ValueError("give either task=... with its options, or tasks=... (a weighted mix), not both")
    if isinstance(tasks, Mapping):
        items = []
        for name, spec in tasks.items():
            if isinstance(spec, Mapping):
                items.append({"name": name, **spec})
            else:
                items.append({"name": name, "weight": spec})
    elif isinstance(tasks, (list, tuple)):
        items = [dict(item) if isinstance(item, Mapping) else {"name": item, "weight": 1.0} for item in tasks]
    else:
        raise ValueError(f"tasks must be a dict of name -> weight or a list of "
                         f"{{'name', 'weight', 'config'}} dicts, got {type(tasks).__name__}")
    if not items:
        raise ValueError("tasks is empty: name at least one reasoning-gym task")
    mix = []
    for item in items:
        unknown = set(item) - {"name", "weight", "config"}
        if unknown:
            raise ValueError(f"task entry {item!r} has unknown keys {sorted(unknown)}; use name, weight, config")
        name, config = item.get("name"), dict(item.get("config") or {})
        _check_task(name)
        _check_config(name, config)
        weight = item.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight <= 0:
            raise ValueError(f"weight of task {name!r} must be a positive number, got {weight!r}")
        mix.append({"name": name, "weight": float(weight), "config": config})
    names = [m["name"] for m in mix]
    if len(set(names)) != len(names):
        raise ValueError(f"tasks names a task twice: {names}")
    return mix


@functools.lru_cache(maxsize=32)
def _procedural_dataset(spec: str):
    """The reasoning-gym dataset for a JSON spec ``{"tasks": [...], "size", "seed"}`` (cached)."""
    rg = import_reasoning_gym()
    from reasoning_gym.composite import DatasetSpec

    config = json.loads(spec)
    mix, size, seed = config["tasks"], config["size"], config["seed"]
    try:
        if len(mix) == 1:
            return rg.create_dataset(mix[0]["name"], size=size, seed=seed, **mix[0]["config"])
        return rg.create_dataset("composite", size=size, seed=seed, datasets=[
            DatasetSpec(m["name"], m["weight"], dict(m["config"])) for m in mix])
    except (TypeError, ValueError, AssertionError) as exc:
        names = ", ".join(m["name"] for m in mix)
        raise ValueError(f"reasoning-gym rejected the config of {names}: {exc or type(exc).__name__}") from None


@functools.lru_cache(maxsize=32)
def build_dataset(spec: str) -> Dataset:
    """Rows for a JSON spec: the question as the user message, reasoning-gym's entry kept for scoring."""
    source = _procedural_dataset(spec)
    rows = []
    for i in range(len(source)):
        entry = source[i]
        name = entry.get("metadata", {}).get("source_dataset", "task")
        rows.append({
            "messages": [{"role": "user", "content": entry["question"]}],
            "ground_truth": entry["answer"],
            "task_id": f"{name}-{i}",
            "rg_spec": spec,
            "rg_entry": entry,
        })
    return Dataset(rows, source=f"reasoning-gym {spec}")


class ReasoningGymScorer:
    """Extract ``<answer>...</answer>`` from the reply and score it with reasoning-gym's ``score_answer``.

    Metrics: ``correct`` (score 1) and ``formatted`` (the reply has answer tags).
    """

    name = "reasoning_gym"
    timeout = None

    def __call__(self, messages: list[dict], ground_truth: Any = None, *, rg_spec: str | None = None,
                 rg_entry: dict | None = None, **row_fields: Any) -> EvaluateResult:
        if rg_spec is None or rg_entry is None:
            raise ValueError("the row has no reasoning-gym entry (fields rg_spec and rg_entry); "
                             "rows must come from ReasoningGymEnv")
        from reasoning_gym.utils import extract_answer

        last = messages[-1] if messages else {}
        reply = last.get("content") if isinstance(last, dict) and last.get("role") == "assistant" else None
        if not isinstance(reply, str):
            return EvaluateResult(0.0, "no assistant reply to score", {"correct": 0.0, "formatted": 0.0})
        answer = extract_answer(reply)
        if answer is None:
            return EvaluateResult(0.0, "no <answer>...</answer> in the reply", {"correct": 0.0, "formatted": 0.0})
        dataset = _procedural_dataset(rg_spec)
        try:
            score = float(dataset.score_answer(answer, rg_entry))
        except Exception as exc:  # a task's checker failing on an odd answer scores 0
            return EvaluateResult(0.0, f"reasoning-gym's checker raised {type(exc).__name__}: {exc}",
                                  {"correct": 0.0, "formatted": 1.0})
        score = min(1.0, max(0.0, score)) if math.isfinite(score) else 0.0
        shown = answer if len(answer) <= 60 else answer[:60] + "..."
        return EvaluateResult(score, f"answer {shown!r} scored {score:.3g} by reasoning-gym",
                              {"correct": float(score >= 1.0), "formatted": 1.0})


reasoning_gym_scorer = ReasoningGymScorer()


class ReasoningGymEnv(TextEnv):
    """Single-turn reasoning-gym tasks with reasoning-gym's own scoring.

    Args:
        task: a reasoning-gym task name (default ``"chain_sum"``); ``**task_config`` are its options.
        tasks: instead of ``task``, a weighted mix: ``{"name": weight}`` or
            ``[{"name": ..., "weight": ..., "config": {...}}]`` (reasoning-gym's composite dataset).
        size: number of problems; seed: generator seed (different seeds give different problems;
            small task spaces can repeat a problem across seeds).
        system_prompt: asks for ``<answer>...</answer>``, which the scorer reads.
        evaluator_timeout, render_mode: see ``TextEnv``.
    """

    def __init__(self, task: str | None = None, tasks: Any = None, size: int = 1000, seed: int = 0, *,
                 system_prompt: str | None = DEFAULT_SYSTEM_PROMPT, evaluator_timeout: float | None = 30.0,
                 render_mode: str | None = None, **task_config: Any):
        import_reasoning_gym()
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"size must be a positive int, got {size!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an int, got {seed!r}")
        mix = normalize_tasks(task, tasks, task_config)
        try:
            spec = json.dumps({"tasks": mix, "size": size, "seed": seed}, sort_keys=True)
        except TypeError as exc:
            raise ValueError(f"task options must be JSON values (numbers, strings, lists): {exc}") from None
        self.tasks = mix
        super().__init__(build_dataset(spec), reasoning_gym_scorer, system_prompt=system_prompt,
                         evaluator_timeout=evaluator_timeout, render_mode=render_mode)

    def row_info(self, row: dict[str, Any]) -> dict[str, Any]:
        """The task the row comes from."""
        return {"task": row["rg_entry"].get("metadata", {}).get("source_dataset")}
