"""rft/ReasoningGym-v0: reasoning-gym tasks with their own scoring."""

from __future__ import annotations

import re
import sys
from collections import Counter

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import rftgym
from rftgym.envs.reasoning_gym.env import ReasoningGymEnv, reasoning_gym_scorer

pytest.importorskip("reasoning_gym")

EASY = {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1}


def solve_chain_sum(question: str) -> int:
    """Work out a chain_sum question ourselves: '... problem: 4 - 1 =' -> 3."""
    expression = question.rsplit(":", 1)[1].rstrip(" =")
    assert re.fullmatch(r"[\d\s+-]+", expression), expression
    tokens = expression.split()
    total = int(tokens[0])
    for op, value in zip(tokens[1::2], tokens[2::2]):
        total = total + int(value) if op == "+" else total - int(value)
    return total


def test_chain_sum_env_passes_check_env_and_scores_a_worked_answer():
    env = gym.make("rft/ReasoningGym-v0", task="chain_sum", size=20, seed=3, **EASY)
    check_env(env.unwrapped)
    for index in range(5):
        messages, info = env.reset(options={"index": index})
        assert messages[0]["role"] == "system" and "<answer>" in messages[0]["content"]
        assert info["task"] == "chain_sum" and info["task_id"] == f"chain_sum-{index}"
        question = messages[-1]["content"]
        assert len(re.findall(r"\d+", question.rsplit(":", 1)[1])) == 2  # the task options apply
        answer = solve_chain_sum(question)
        _, reward, terminated, _, info = env.step(f"Adding up: <answer>{answer}</answer>")
        assert reward == 1.0 and terminated
        assert info["evaluation"]["metrics"] == {"correct": 1.0, "formatted": 1.0}
    env.reset(options={"index": 0})
    _, reward, _, _, info = env.step(f"<answer>{solve_chain_sum(env.unwrapped.dataset[0]['messages'][-1]['content']) + 1}</answer>")
    assert reward == 0.0 and info["evaluation"]["metrics"]["formatted"] == 1.0
    env.reset(options={"index": 0})
    _, reward, _, _, info = env.step("I think it is 5")
    assert reward == 0.0 and info["evaluation"]["reason"] == "no <answer>...</answer> in the reply"


def test_default_task_and_cached_rows():
    env = gym.make("rft/ReasoningGym-v0", size=10)
    assert env.unwrapped.tasks == [{"name": "chain_sum", "weight": 1.0, "config": {}}]
    again = ReasoningGymEnv(size=10)
    assert again.dataset is env.unwrapped.dataset
    messages, info = env.reset(seed=0)
    assert set(info) == {"index", "task_id", "task"}  # the entry (with its answer) stays private
    assert len(messages) == 2


def test_weighted_mix_uses_each_tasks_scorer():
    env = gym.make("rft/ReasoningGym-v0", size=80, seed=1,
                   tasks={"chain_sum": {"weight": 3, "config": EASY}, "basic_arithmetic": 1}).unwrapped
    check_env(env)
    tasks = Counter(env.row_info(row)["task"] for row in env.dataset)
    assert set(tasks) == {"chain_sum", "basic_arithmetic"} and tasks["chain_sum"] > tasks["basic_arithmetic"]
    for index in (0, 1, 2, 3, 4, 5):
        row = env.dataset[index]
        env.reset(options={"index": index})
        assert env.step(f"<answer>{row['ground_truth']}</answer>")[1] == 1.0
        env.reset(options={"index": index})
        assert env.step("<answer>not a number</answer>")[1] == 0.0


@pytest.mark.parametrize("kwargs,message", [
    ({"task": "chain_summ"}, "unknown reasoning-gym task 'chain_summ'; did you mean chain_sum"),
    ({"task": "chain_sum", "max_termz": 3}, r"has no option\(s\) \['max_termz'\]; its options are \["),
    ({"task": "chain_sum", "tasks": {"chain_sum": 1}}, "give either task=... with its options, or tasks="),
    ({"tasks": {"chain_sum": -1}}, "weight of task 'chain_sum' must be a positive number"),
    ({"tasks": []}, "tasks is empty"),
    ({"task": "chain_sum", "min_terms": 5, "max_terms": 2}, "reasoning-gym rejected the config of chain_sum"),
    ({"size": 0}, "size must be a positive int"),
])
def test_bad_configs_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ReasoningGymEnv(**kwargs)


def test_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "reasoning_gym", None)  # makes ``import reasoning_gym`` fail
    with pytest.raises(ImportError, match=re.escape('pip install "rftgym[reasoning-gym]"')):
        ReasoningGymEnv()


def test_scorer_handles_odd_replies():
    env = ReasoningGymEnv(size=5, **EASY)
    fields = env.row_fields(env.dataset[0])
    no_reply = reasoning_gym_scorer([{"role": "user", "content": "?"}], None, **fields)
    assert no_reply.score == 0.0 and no_reply.reason == "no assistant reply to score"
    garbage = reasoning_gym_scorer([{"role": "assistant", "content": "<answer>" + "x" * 100_000 + "</answer>"}],
                                   None, **fields)
    assert garbage.score == 0.0
    with pytest.raises(ValueError, match="the row has no reasoning-gym entry"):
        reasoning_gym_scorer([{"role": "assistant", "content": "<answer>1</answer>"}], "1")


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_group_env(executor):
    envs = rftgym.make_group_env("rft/ReasoningGym-v0", num_prompts=2, group_size=2, executor=executor,
                                 max_workers=2, size=10, **EASY)
    try:
        obs, _ = envs.reset(seed=0)
        answers = [solve_chain_sum(o[-1]["content"]) for o in obs]
        replies = [f"<answer>{answers[0]}</answer>", "<answer>x</answer>", f"<answer>{answers[2]}</answer>", ""]
        _, rewards, terminated, _, _ = envs.step(replies)
        np.testing.assert_array_equal(rewards, [1, 0, 1, 0])
        assert terminated.all()
    finally:
        envs.close()
