"""``rft/Math-v0``: generated arithmetic and word problems (levels 1-5) with exact answer checking."""

from rftgym.envs.math.env import DEFAULT_SYSTEM_PROMPT, MathEnv
from rftgym.envs.math.evaluator import MathEvaluator, math_evaluator

__all__ = ["DEFAULT_SYSTEM_PROMPT", "MathEnv", "MathEvaluator", "math_evaluator"]
