"""Groups for GRPO: P prompts x G copies, with replies scored concurrently on a worker pool.

``make_group_env("rft/Math-v0", num_prompts=4, group_size=8)`` builds 32 member environments.
``reset()`` puts the same prompt in each group of G consecutive members; ``step(replies)`` scores
every reply at once on a thread or process pool, so slow evaluators (code execution, solvers)
do not run one by one. Multi-turn members keep stepping until each one is done; a finished
member ignores further actions.

Observations and infos are lists with one entry per member (member ``i`` belongs to prompt
``i // group_size``); rewards, ``terminated`` and ``truncated`` are numpy arrays.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, Callable, Mapping, Sequence

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from rftgym.core import MultiTurnTextEnv, TextEnv
from rftgym.datasets import load_dataset


def _build_member(env: str | Callable[[], gym.Env], kwargs: Mapping[str, Any]) -> gym.Env:
    made = gym.make(env, disable_env_checker=True, **kwargs) if isinstance(env, str) else env()
    member = made.unwrapped
    if not isinstance(member, TextEnv) and not hasattr(member, "num_rows"):
        raise TypeError("group environments need rftgym TextEnv (or RemoteEnv) members, "
                        f"got {type(member).__name__}")
    return member


class GroupVectorEnv(VectorEnv):
    """``num_prompts`` prompts, each served to ``group_size`` member environments.

    Args:
        env: a registered id (``"rft/Math-v0"``) or a zero-argument factory returning a TextEnv.
        num_prompts: P, distinct prompts per reset.
        group_size: G, copies (replies) per prompt.
        executor: ``"thread"`` (default) or ``"process"`` (single-turn scoring in worker processes;
            evaluators must be picklable), or an ``concurrent.futures.Executor`` to share.
        max_workers: pool size (default: ``min(32, P*G)`` threads, or the CPU count for processes).
        **env_kwargs: passed to ``gym.make`` for every member. A ``dataset`` path is read once.
    """

    metadata = {"autoreset_mode": AutoresetMode.DISABLED}

    def __init__(self, env: str | Callable[[], gym.Env], num_prompts: int = 1, group_size: int = 1, *,
                 executor: str | Executor = "thread", max_workers: int | None = None, **env_kwargs: Any):
        if num_prompts < 1 or group_size < 1:
            raise ValueError(f"num_prompts and group_size must be >= 1, got {num_prompts} and {group_size}")
        if isinstance(env_kwargs.get("dataset"), (str, os.PathLike)):
            env_kwargs["dataset"] = load_dataset(env_kwargs["dataset"])
        self.num_prompts, self.group_size = num_prompts, group_size
        self.num_envs = num_prompts * group_size
        self.envs = [_build_member(env, env_kwargs) for _ in range(self.num_envs)]
        first = self.envs[0]
        self.single_observation_space = first.observation_space
        self.single_action_space = first.action_space
        self.observation_space = batch_space(first.observation_space, self.num_envs)
        self.action_space = batch_space(first.action_space, self.num_envs)
        self._own_pool = not isinstance(executor, Executor)
        # Stateful steps (multi-turn, remote) always run on threads in this process; only the
        # scoring of single-turn replies may go to a process pool.
        self._step_pool = ThreadPoolExecutor(max_workers or min(32, self.num_envs), thread_name_prefix="rftgym-step")
        if isinstance(executor, Executor):
            self.pool = executor
            self.executor_kind = "process" if isinstance(executor, ProcessPoolExecutor) else "thread"
        elif executor == "thread":
            self.pool = self._step_pool
            self.executor_kind = "thread"
        elif executor == "process":
            # forkserver: forking a process that runs JAX (multi-threaded) can deadlock.
            self.pool = ProcessPoolExecutor(max_workers or os.cpu_count() or 1,
                                            mp_context=multiprocessing.get_context("forkserver"))
            self.executor_kind = "process"
        else:
            raise ValueError(f"executor must be 'thread', 'process' or an Executor, got {executor!r}")
        self._order: np.ndarray | None = None
        self._cursor = 0
        self._rng = np.random.default_rng()
        self.done = np.ones(self.num_envs, dtype=bool)
        self.episode_rewards = np.zeros(self.num_envs, dtype=np.float32)
        self.prompt_indices: list[int] = []
        self._last_obs: list[Any] = [None] * self.num_envs

    @property
    def dataset_size(self) -> int:
        first = self.envs[0]
        return len(first.dataset) if isinstance(first, TextEnv) else int(first.num_rows)

    def _next_prompts(self) -> list[int]:
        indices = []
        for _ in range(self.num_prompts):
            if self._order is None or self._cursor >= len(self._order):
                self._order = self._rng.permutation(self.dataset_size)
                self._cursor = 0
            indices.append(int(self._order[self._cursor]))
            self._cursor += 1
        return indices

    def reset(self, *, seed: int | None = None, options: Mapping[str, Any] | None = None):
        """Serve P prompts x G copies. ``options={"indices": [...]}`` picks the P dataset rows;
        otherwise rows come in a seeded shuffled order, without replacement within an epoch."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
            self._order = None
        options = dict(options or {})
        indices = options.pop("indices", None)
        if options:
            raise ValueError(f"unknown reset option(s) {sorted(options)}; use 'indices'")
        if indices is None:
            indices = self._next_prompts()
        indices = [int(i) for i in indices]
        if len(indices) != self.num_prompts:
            raise ValueError(f"options['indices'] must hold {self.num_prompts} indices, got {len(indices)}")
        self.prompt_indices = indices
        observations, infos = [], []
        for member, env in enumerate(self.envs):
            member_seed = None if seed is None else seed + member
            obs, info = env.reset(seed=member_seed, options={"index": indices[member // self.group_size]})
            info["group"] = member // self.group_size
            observations.append(obs)
            infos.append(info)
        self.done[:] = False
        self.episode_rewards[:] = 0.0
        self._last_obs = list(observations)
        return observations, infos

    def step(self, actions: Sequence[str | None]):
        """Step every active member with its reply; returns (obs, rewards, terminated, truncated, infos)."""
        if len(actions) != self.num_envs:
            raise ValueError(f"expected {self.num_envs} actions, got {len(actions)}")
        active = [i for i in range(self.num_envs) if not self.done[i]]
        if not active:
            raise RuntimeError("every member is done: call reset() first")
        futures = {}
        for i in active:
            env = self.envs[i]
            if self._scores_in_process(env):
                futures[i] = self.pool.submit(env.evaluation_request(actions[i]).run)
            else:
                futures[i] = self._step_pool.submit(env.step, actions[i])
        rewards = np.zeros(self.num_envs, dtype=np.float32)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        infos: list[dict[str, Any]] = [{"group": i // self.group_size, "active": False} for i in range(self.num_envs)]
        observations = list(self._last_obs)
        for i, future in futures.items():
            outcome = future.result()
            if self._scores_in_process(self.envs[i]):
                outcome = self.envs[i].complete_step(outcome)
            obs, reward, term, trunc, info = outcome
            info["group"] = i // self.group_size
            info["active"] = True
            observations[i], rewards[i], terminated[i], truncated[i], infos[i] = obs, reward, term, trunc, info
            if term or trunc:
                self.done[i] = True
        self.episode_rewards += rewards
        self._last_obs = observations
        return observations, rewards, terminated, truncated, infos

    def _scores_in_process(self, env: gym.Env) -> bool:
        """Single-turn TextEnvs send only the evaluation to a process pool; others step in threads."""
        return (self.executor_kind == "process" and isinstance(env, TextEnv)
                and not isinstance(env, MultiTurnTextEnv))

    @property
    def all_done(self) -> bool:
        return bool(self.done.all())

    def close(self, **kwargs: Any) -> None:
        self._step_pool.shutdown(wait=False, cancel_futures=True)
        if self._own_pool:
            self.pool.shutdown(wait=False, cancel_futures=True)
        for env in self.envs:
            env.close()


def make_group_env(env: str | Callable[[], gym.Env], num_prompts: int = 1, group_size: int = 1,
                   **kwargs: Any) -> GroupVectorEnv:
    """Build a ``GroupVectorEnv``: P prompts x G replies scored concurrently (see the class)."""
    return GroupVectorEnv(env, num_prompts=num_prompts, group_size=group_size, **kwargs)


def group_vector_entry_point(env_id: str, num_envs: int, group_size: int = 1,
                             **kwargs: Any) -> GroupVectorEnv:
    """``vector_entry_point`` of registered ids: ``gym.make_vec(id, num_envs=P*G, group_size=G)``."""
    if num_envs % group_size:
        raise ValueError(f"num_envs={num_envs} is not a multiple of group_size={group_size}")
    return GroupVectorEnv(env_id, num_prompts=num_envs // group_size, group_size=group_size, **kwargs)
