"""``rft/ReasoningGym-v0``: reasoning-gym's procedural tasks (optional extra ``rftgym[reasoning-gym]``)."""

from rftgym.envs.reasoning_gym.env import ReasoningGymEnv, reasoning_gym_scorer, task_names

__all__ = ["ReasoningGymEnv", "reasoning_gym_scorer", "task_names"]
