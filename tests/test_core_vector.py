"""GroupVectorEnv: P prompts x G copies, concurrent scoring, multi-turn groups."""

from __future__ import annotations

import threading

import gymnasium as gym
import numpy as np
import pytest

import rftgym
from rftgym import EvaluateResult, MultiTurnTextEnv, TextEnv

ROWS = [{"messages": [{"role": "user", "content": f"Reply with w{i}"}], "ground_truth": f"w{i}"} for i in range(5)]


def target(obs):
    return obs[-1]["content"].split()[-1]


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_groups_share_a_prompt_and_score_each_reply(executor):
    envs = rftgym.make_group_env("rft/Custom-v0", num_prompts=2, group_size=3, executor=executor,
                                 max_workers=2, dataset=ROWS, evaluator="core_evaluators:exact_word")
    try:
        obs, infos = envs.reset(seed=0)
        assert len(obs) == 6 and envs.num_envs == 6
        assert obs[0] == obs[1] == obs[2] and obs[3] == obs[4] == obs[5] and obs[0] != obs[3]
        assert [info["group"] for info in infos] == [0, 0, 0, 1, 1, 1]
        replies = [target(o) if i % 3 == 0 else "no" for i, o in enumerate(obs)]
        obs2, rewards, terminated, truncated, infos = envs.step(replies)
        np.testing.assert_array_equal(rewards, [1, 0, 0, 1, 0, 0])
        assert terminated.all() and not truncated.any() and envs.all_done
        assert infos[0]["evaluation"]["score"] == 1.0 and obs2[0][-1]["content"] == replies[0]
        with pytest.raises(RuntimeError, match="every member is done"):
            envs.step(replies)
    finally:
        envs.close()


def test_prompt_order_is_seeded_and_without_replacement():
    envs = rftgym.make_group_env("rft/Custom-v0", num_prompts=1, group_size=2, dataset=ROWS,
                                 evaluator="core_evaluators:exact_word")
    seen = []
    envs.reset(seed=3)
    seen.append(envs.prompt_indices[0])
    for _ in range(4):
        envs.reset()
        seen.append(envs.prompt_indices[0])
    assert sorted(seen) == list(range(5))
    envs.reset(seed=3)
    assert envs.prompt_indices[0] == seen[0]
    envs.reset(options={"indices": [4]})
    assert envs.prompt_indices == [4]
    with pytest.raises(ValueError, match="must hold 1 indices"):
        envs.reset(options={"indices": [1, 2]})
    envs.close()


def test_pool_runs_evaluations_at_the_same_time():
    barrier = threading.Barrier(4, timeout=5)

    def meet(messages, ground_truth=None, **kw):
        barrier.wait()  # only returns when 4 evaluations are running at once
        return 1.0

    envs = rftgym.make_group_env(lambda: TextEnv(ROWS, meet), num_prompts=2, group_size=2, max_workers=4)
    envs.reset(seed=0)
    _, rewards, _, _, infos = envs.step(["a"] * 4)
    envs.close()
    assert rewards.tolist() == [1.0] * 4, [i["evaluation"]["reason"] for i in infos]


def test_make_vec_uses_the_group_vector_entry_point():
    envs = gym.make_vec("rft/Custom-v0", num_envs=4, group_size=2, dataset=ROWS,
                        evaluator="core_evaluators:exact_word")
    assert isinstance(envs, rftgym.GroupVectorEnv) and envs.num_prompts == 2
    obs, _ = envs.reset(seed=0)
    assert obs[0] == obs[1]
    envs.close()
    with pytest.raises(ValueError, match="not a multiple of group_size"):
        gym.make_vec("rft/Custom-v0", num_envs=3, group_size=2, dataset=ROWS,
                     evaluator="core_evaluators:exact_word")


class Countdown(MultiTurnTextEnv):
    """Episode ends when the reply is 'stop'; reward is 1/turns."""

    def respond(self, reply):
        return ([], True) if reply == "stop" else ([{"role": "user", "content": "again"}], False)

    def evaluate_episode(self, messages):
        return EvaluateResult(1.0 / self.turns)


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_multi_turn_members_step_until_each_is_done(executor):
    envs = rftgym.make_group_env(lambda: Countdown(ROWS, max_turns=3), num_prompts=1, group_size=3,
                                 executor=executor)
    envs.reset(seed=0)
    _, rewards, term, trunc, infos = envs.step(["stop", "go", "go"])
    np.testing.assert_array_equal(term, [True, False, False])
    assert rewards[0] == 1.0 and not envs.all_done
    _, rewards, term, trunc, infos = envs.step([None, "stop", "go"])
    assert infos[0]["active"] is False and rewards[0] == 0.0
    assert rewards[1] == 0.5 and term[1] and not term[2]
    _, rewards, term, trunc, infos = envs.step([None, None, "go"])
    assert trunc[2] and rewards[2] == pytest.approx(1 / 3) and envs.all_done
    np.testing.assert_allclose(envs.episode_rewards, [1.0, 0.5, 1 / 3], rtol=1e-6)
    envs.close()


def test_members_must_be_text_envs():
    with pytest.raises(TypeError, match="need rftgym TextEnv \\(or RemoteEnv\\) members"):
        rftgym.make_group_env(lambda: gym.make("CartPole-v1"), num_prompts=1, group_size=1)


def test_wrong_action_count():
    envs = rftgym.make_group_env(lambda: TextEnv(ROWS, "core_evaluators:exact_word"), 1, 2)
    envs.reset(seed=0)
    with pytest.raises(ValueError, match="expected 2 actions, got 1"):
        envs.step(["x"])
    envs.close()
