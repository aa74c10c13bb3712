"""The TextEnv / MultiTurnTextEnv contract, spaces, registry and vectorization."""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import rftgym
from rftgym import EvaluateResult, MultiTurnTextEnv, TextEnv, reward_function
from rftgym.spaces import ChatSpace, TextSpace

ROWS = [
    {"messages": [{"role": "user", "content": f"Reply with the word w{i}."}], "ground_truth": f"w{i}",
     "task_id": f"t{i}", "difficulty": i % 3}
    for i in range(6)
]


@reward_function
def exact_match(messages, ground_truth=None, **fields):
    reply = messages[-1]["content"].strip()
    return EvaluateResult(float(reply == ground_truth), f"expected {ground_truth}",
                          {"exact": float(reply == ground_truth), "length": min(1.0, len(reply) / 100)})


def make_env(**kwargs):
    return TextEnv(ROWS, exact_match, **kwargs)


def test_import_does_not_load_jax_or_transformers():
    code = ("import sys, rftgym, rftgym.envs; "
            "bad = [m for m in ('jax', 'flax', 'transformers', 'torch') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_reset_step_contract():
    env = make_env()
    obs, info = env.reset(seed=0, options={"index": 2})
    assert obs == ROWS[2]["messages"]
    assert info == {"index": 2, "task_id": "t2"}
    assert "w2" not in str(info) or info["task_id"] == "t2"
    obs2, reward, terminated, truncated, info = env.step("w2")
    assert obs2[-1] == {"role": "assistant", "content": "w2"}
    assert reward == 1.0 and terminated and not truncated
    assert info["evaluation"] == {"score": 1.0, "reason": "expected w2", "metrics": {"exact": 1.0, "length": 0.02}}
    with pytest.raises(RuntimeError, match="call reset"):
        env.step("again")


def test_ground_truth_never_in_observation_or_info():
    rows = [{"messages": [{"role": "user", "content": "q"}], "ground_truth": "SECRET-ANSWER-42"}]
    env = TextEnv(rows, exact_match)
    obs, info = env.reset(seed=1)
    assert "SECRET-ANSWER-42" not in repr(obs) + repr(info)
    obs, _, _, _, info = env.step("nope")
    assert "SECRET-ANSWER-42" not in repr(obs)
    assert "ground_truth" not in info


def test_reset_by_task_id_and_bad_options():
    env = make_env()
    _, info = env.reset(options={"task_id": "t4"})
    assert info["index"] == 4
    with pytest.raises(KeyError, match="no row with task_id 'nope'"):
        env.reset(options={"task_id": "nope"})
    with pytest.raises(IndexError, match="out of range for 6 rows"):
        env.reset(options={"index": 6})
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(options={"row": 1})


def test_seeded_order_is_a_permutation_per_epoch():
    env = make_env()
    env.reset(seed=123)
    first = [env._index] + [env.reset()[1]["index"] for _ in range(5)]
    assert sorted(first) == list(range(6))  # no replacement within the epoch
    second = [env.reset()[1]["index"] for _ in range(6)]
    assert sorted(second) == list(range(6))
    again = make_env()
    again.reset(seed=123)
    replay = [again._index] + [again.reset()[1]["index"] for _ in range(5)]
    assert replay == first
    other = make_env()
    other.reset(seed=7)
    assert [other._index] + [other.reset()[1]["index"] for _ in range(5)] != first


def test_system_prompt_prepended_only_without_one():
    rows = ROWS[:1] + [{"messages": [{"role": "system", "content": "own"}, {"role": "user", "content": "x"}],
                        "ground_truth": "x"}]
    env = TextEnv(rows, exact_match, system_prompt="Answer briefly.")
    obs, _ = env.reset(options={"index": 0})
    assert obs[0] == {"role": "system", "content": "Answer briefly."}
    obs, _ = env.reset(options={"index": 1})
    assert obs[0]["content"] == "own" and len(obs) == 2


def test_action_must_be_text():
    env = make_env()
    env.reset(seed=0)
    with pytest.raises(TypeError, match="reply as a str, got int"):
        env.step(3)


def test_row_fields_reach_the_evaluator():
    seen = {}

    @reward_function
    def spy(messages, ground_truth=None, **fields):
        seen.update(fields)
        return 1.0

    env = TextEnv(ROWS, spy)
    env.reset(options={"index": 1})
    env.step("x")
    assert seen == {"task_id": "t1", "difficulty": 1}


def test_render_ansi():
    env = make_env(render_mode="ansi")
    env.reset(options={"index": 0})
    env.step("w0")
    assert env.render() == "[user] Reply with the word w0.\n[assistant] w0"


def test_spaces_hold_unicode_chat():
    chat, text = ChatSpace(seed=0), TextSpace(seed=0)
    assert chat.contains([{"role": "user", "content": "日本語 🙂 ∑"}])
    assert not chat.contains([{"role": "robot", "content": "x"}])
    assert not chat.contains([{"role": "user", "content": 3}])
    assert not chat.contains({"role": "user", "content": "x"})
    assert chat.contains([{"role": "tool", "content": "{}", "name": "f", "tool_call_id": "1"}])
    assert not chat.contains([{"role": "user", "content": "x", "secret": 1}])
    assert text.contains("Ωmega 中文") and not text.contains(b"bytes")
    for _ in range(20):
        assert chat.contains(chat.sample()) and text.contains(text.sample())
    a, b = ChatSpace(seed=5), ChatSpace(seed=5)
    assert [a.sample() for _ in range(4)] == [b.sample() for _ in range(4)]
    assert not ChatSpace(max_bytes=10).contains([{"role": "user", "content": "x" * 20}])


def test_check_env_passes_on_text_env():
    check_env(make_env())
    env = gym.make("rft/Custom-v0", dataset=ROWS, evaluator=exact_match)
    check_env(env.unwrapped)


class EchoCounter(MultiTurnTextEnv):
    """Toy multi-turn env: says 'more' until the reply is 'done'."""

    def respond(self, reply):
        if reply == "done":
            return [], True
        return [{"role": "user", "content": f"more ({self.turns})"}], False

    def evaluate_episode(self, messages):
        return EvaluateResult(1.0 / self.turns, f"{self.turns} turns")


def test_multi_turn_episode_and_truncation():
    env = EchoCounter(ROWS, max_turns=3)
    obs, _ = env.reset(options={"index": 0})
    obs, reward, term, trunc, info = env.step("hello")
    assert obs[-2:] == [{"role": "assistant", "content": "hello"}, {"role": "user", "content": "more (1)"}]
    assert (reward, term, trunc, info["turn"]) == (0.0, False, False, 1)
    obs, reward, term, trunc, info = env.step("done")
    assert (reward, term, trunc) == (0.5, True, False)
    assert info["evaluation"]["reason"] == "2 turns"
    env.reset(options={"index": 0})
    for _ in range(2):
        assert env.step("x")[2:4] == (False, False)
    obs, reward, term, trunc, info = env.step("x")
    assert (term, trunc) == (False, True) and reward == pytest.approx(1 / 3)
    check_env(EchoCounter(ROWS, max_turns=3))


class Budgeted(MultiTurnTextEnv):
    """respond() may end an episode as truncated (e.g. a budget ran out)."""

    def respond(self, reply):
        return [{"role": "tool", "content": "budget used up"}], False, reply == "spend"

    def evaluate_episode(self, messages):
        return EvaluateResult(0.25)


def test_respond_can_truncate():
    env = Budgeted(ROWS, max_turns=5)
    env.reset(seed=0)
    assert env.step("look")[2:4] == (False, False)
    obs, reward, term, trunc, _ = env.step("spend")
    assert (reward, term, trunc) == (0.25, False, True)
    assert obs[-1] == {"role": "tool", "content": "budget used up"}


def test_registry_lists_every_task_family():
    envs = rftgym.list_envs()
    for env_id in ("rft/Math-v0", "rft/ReasoningGym-v0", "rft/JSONSchema-v0", "rft/Code-v0",
                   "rft/ToolAgent-v0", "rft/Custom-v0"):
        assert env_id in envs and env_id in gym.registry
        assert envs[env_id]
    # Gymnasium's module-qualified form also works
    env = gym.make("rftgym:rft/Custom-v0", dataset=ROWS, evaluator=exact_match)
    assert env.unwrapped.dataset[0] == ROWS[0]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_make_vec_sync_and_async(mode):
    envs = gym.make_vec("rft/Custom-v0", num_envs=3, vectorization_mode=mode,
                        dataset=ROWS, evaluator="core_evaluators:exact_word")
    try:
        obs, infos = envs.reset(seed=0)
        assert len(obs) == 3 and all(o[-1]["role"] == "user" for o in obs)
        targets = [o[-1]["content"].split()[-1].rstrip(".") for o in obs]
        replies = (targets[0], "wrong", targets[2])
        _, rewards, terminated, truncated, _ = envs.step(replies)
        np.testing.assert_array_equal(rewards, [1.0, 0.0, 1.0])
        assert terminated.all() and not truncated.any()
    finally:
        envs.close()
