"""Proof that GRPO learns: a tiny random-init model on a toy task goes from near-0 reward to
high reward; plus the rollout plumbing (chat template -> tokens -> replies -> batch), single- and
multi-turn."""

import json

import gymnasium as gym
import jax
import numpy as np
import pytest

import grpo_toy
from rftgym.trainers.loading import load_model
from rftgym.trainers.rollout import (ChatEncoder, DataOrder, EnvGroups, RolloutWorker, SamplingSettings,
                                     bucket, make_executor, pack_batch)
from rftgym.trainers.sampler import Sampler
from rftgym.trainers.train import train
from rftgym.trainers.train_config import TrainConfig

grpo_toy.enable_compile_cache()
MULTI_TURN_ID = "rftgym-test/TwoTurnLetters-v0"
if MULTI_TURN_ID not in gym.registry:
    gym.register(MULTI_TURN_ID, entry_point=grpo_toy.TwoTurnLetters, disable_env_checker=True)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    model_dir = grpo_toy.write_model(str(root / "model"))
    dataset = grpo_toy.write_dataset(str(root / "letters.jsonl"))
    return {"model": model_dir, "dataset": dataset}


def read(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def test_grpo_raises_reward_from_near_zero(toy, tmp_path):
    cfg = TrainConfig(envs=[grpo_toy.env_spec_dict(toy["dataset"])], model=toy["model"], run_dir=str(tmp_path),
                      steps=100, prompts_per_step=8, group_size=8, max_new_tokens=4, max_prompt_len=32,
                      learning_rate=3e-3, lora_rank=8, lora_alpha=16.0, microbatch_size=0, eval_limit=0,
                      eval_every=50, save_every=0, log_samples_every=25, progress=False, seed=0)
    result = train(cfg)
    rewards = [m["reward"] for m in read(tmp_path / "metrics.jsonl")]
    evals = {e["step"]: e for e in read(tmp_path / "eval.jsonl")}
    assert len(rewards) == 100 and sorted(evals) == [0, 50, 100]
    # a random policy over ~30 characters: near 0 at the start
    assert np.mean(rewards[:10]) < 0.25 and evals[0]["accuracy"] <= 0.25
    # sampled (temperature 1) reward climbs; greedy replies solve (almost) every letter
    assert np.mean(rewards[-10:]) > 0.6
    assert evals[100]["accuracy"] >= 0.875
    assert result["eval"][100]["rft/Custom-v0"]["accuracy"] == evals[100]["accuracy"]
    samples = read(tmp_path / "samples.jsonl")
    assert [s["step"] for s in samples] == [25, 50, 75, 100]
    assert {"prompt", "replies", "reward"} <= set(samples[-1]["samples"][0])


@pytest.fixture(scope="module")
def policy(toy):
    model = load_model(toy["model"])
    encoder = ChatEncoder(model.tokenizer, max_prompt_len=64)
    sampler = Sampler(model.cfg, model.tokenizer, max_prompt_len=128)
    return model, encoder, RolloutWorker(encoder, sampler, model.params, lora_scale=2.0)


def test_single_turn_rollout_packs_prompt_and_replies(toy, policy):
    model, encoder, worker = policy
    executor = make_executor("thread")
    groups = EnvGroups("rft/Custom-v0", {"dataset": toy["dataset"], "evaluator": "grpo_toy:starts_with_letter"},
                       4, executor)
    eps, timings = worker.run([groups], [(0, 2), (0, 5)], 4, None, jax.random.key(0),
                              SamplingSettings(max_new_tokens=6))
    assert len(eps) == 8 and timings["sample_s"] > 0
    for i, ep in enumerate(eps):
        row = [2, 5][i // 4]
        assert ep.row == row and ep.turns == 1 and ep.done
        letter = grpo_toy.LETTERS[row]
        assert ep.prompt_ids == model.tokenizer.encode(f"<|im_start|>{letter}", add_special_tokens=False)
        assert ep.reward == float(ep.replies[0][:1] == letter)
        assert sum(ep.mask) == len(ep.region) <= 6
    batch = pack_batch(eps, pad_id=0, max_prompt_len=64, max_region=6)
    lp, lc = bucket(2), 6  # prompts are 2 tokens; the region is capped at max_new_tokens
    assert batch["tokens"].shape == (8, lp + lc)
    for i, ep in enumerate(eps):
        n = len(ep.region)
        assert batch["tokens"][i, lp - 2:lp].tolist() == ep.prompt_ids
        assert batch["attention_mask"][i, :lp - 2].sum() == 0  # left padding
        assert batch["tokens"][i, lp:lp + n].tolist() == ep.region
        assert batch["loss_mask"][i].tolist() == [1.0] * n + [0.0] * (lc - n)
    groups.close()
    executor.shutdown()


def test_multi_turn_rollout_interleaves_env_messages(policy):
    model, encoder, worker = policy
    executor = make_executor("thread")
    groups = EnvGroups(MULTI_TURN_ID, {}, 2, executor)
    assert groups.multi_turn
    eps, _ = worker.run([groups], [(0, 1), (0, 3)], 2, None, jax.random.key(1), SamplingSettings(max_new_tokens=3))
    tok = model.tokenizer
    for ep in eps:
        assert ep.turns == 2 and len(ep.replies) == 2 and ep.done
        # the whole episode as one token sequence: prompt, reply 1, env message, reply 2
        convo = ep.messages
        assert [m["role"] for m in convo] == ["user", "assistant", "user", "assistant"]
        full = ep.prompt_ids + ep.region
        # generated tokens are marked; the env's "again" turn is not
        again = tok.encode("<|im_start|>again", add_special_tokens=False)
        first = ep.mask.index(0)
        assert ep.region[first:first + len(again)] == again
        assert sum(ep.mask) == len(ep.region) - len(again)
        assert tok.decode(full).startswith(f"<|im_start|>{grpo_toy.LETTERS[ep.row]}")
        expected = sum(r[:1] == grpo_toy.LETTERS[ep.row] for r in ep.replies) / 2
        assert ep.reward == expected
    groups.close()
    executor.shutdown()


def test_multi_turn_env_trains(tmp_path, toy):
    cfg = TrainConfig(envs=[{"id": MULTI_TURN_ID}], model=toy["model"], run_dir=str(tmp_path), steps=2,
                      prompts_per_step=2, group_size=4, max_new_tokens=3, max_prompt_len=32,
                      max_episode_tokens=32, eval_limit=4, eval_at_start=False, save_every=0, progress=False)
    train(cfg)
    metrics = read(tmp_path / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [1, 2]
    assert all(m["turns"] == 2.0 for m in metrics) and "metrics/turns" in metrics[0]
    assert read(tmp_path / "eval.jsonl")[0]["n"] == 4


def test_data_order_is_a_seeded_epoch_shuffle_with_mixture():
    order = DataOrder([5], [1.0], seed=3)
    rows = [r for step in range(1, 4) for r in order.next_rows(step, 2)]
    first_epoch = [r for _, r in rows[:5]]
    assert sorted(first_epoch) == [0, 1, 2, 3, 4]  # without replacement within an epoch
    assert order.state_dict()["position"] == [[1, 1]]
    again = DataOrder([5], [1.0], seed=3)
    again.load_state_dict({"sizes": [5], "position": [[0, 4]], "seed": 3})
    assert again.next_rows(3, 2) == rows[4:6]  # resumes mid-epoch exactly
    mix = DataOrder([100, 100], [3.0, 1.0], seed=0)
    picks = [e for step in range(1, 101) for e, _ in mix.next_rows(step, 4)]
    assert 0.68 < picks.count(0) / len(picks) < 0.82  # weights 3:1
    with pytest.raises(ValueError, match="dataset sizes changed"):
        again.load_state_dict({"sizes": [6], "position": [[0, 0]], "seed": 3})


def test_skipping_zero_advantage_groups_changes_nothing_but_time(toy, tmp_path):
    """The same run with and without skipping the no-gradient groups: same rewards, same adapters."""
    from rftgym.trainers.train import Trainer

    runs = {}
    for skip in (True, False):
        cfg = TrainConfig(envs=[grpo_toy.env_spec_dict(toy["dataset"])], model=toy["model"],
                          run_dir=str(tmp_path / f"skip{skip}"), steps=2, prompts_per_step=4, group_size=8,
                          max_new_tokens=4, max_prompt_len=32, learning_rate=3e-3, lora_rank=8, lora_alpha=16.0,
                          microbatch_size=8, eval_limit=0, eval_every=0, save_every=0, progress=False, seed=1,
                          skip_zero_advantage=skip)
        trainer = Trainer(cfg)
        metrics = [trainer.train_one_step() for _ in range(2)]
        runs[skip] = (metrics, jax.device_get(trainer.state["lora"]))
        trainer.close()
    (m_skip, lora_skip), (m_full, lora_full) = runs[True], runs[False]
    assert [m["reward"] for m in m_skip] == [m["reward"] for m in m_full]
    assert [m["frac_reward_zero_std"] for m in m_skip] == [m["frac_reward_zero_std"] for m in m_full]
    for a, b in zip(jax.tree.leaves(lora_skip), jax.tree.leaves(lora_full)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    for m in m_skip:  # microbatches of one group: exactly the groups with a reward spread run
        assert m["update_microbatches_frac"] == pytest.approx(1.0 - m["frac_reward_zero_std"])
        assert m["loss"] == pytest.approx(m_full[m_skip.index(m)]["loss"], rel=1e-4, abs=1e-7)
    assert "update_microbatches_frac" not in m_full[0]
    assert any(0 < m["frac_reward_zero_std"] < 1 for m in m_skip)  # some groups were skipped, some ran
