"""rftgym: reinforcement fine-tuning of language models with Gymnasium text environments.

``import rftgym`` registers every ``rft/*`` environment id with Gymnasium; it does not import
JAX (the trainer lives in ``rftgym.trainers``).
"""

from rftgym.core import EvaluationRequest, MultiTurnTextEnv, TextEnv
from rftgym.custom import CustomEnv
from rftgym.datasets import Dataset, DatasetError, load_dataset
from rftgym.evaluators import (
    EvaluateResult,
    Evaluator,
    EvaluatorError,
    RewardFunction,
    WeightedEvaluator,
    evaluate_safely,
    reward_function,
)
from rftgym.registry import list_envs, register_envs
from rftgym.serving import EnvServer, RemoteEnv, RemoteEnvError
from rftgym.spaces import ChatSpace, TextSpace
from rftgym.vector import GroupVectorEnv, make_group_env

__version__ = "0.1.0"

register_envs()

__all__ = [
    "ChatSpace", "CustomEnv", "EnvServer", "RemoteEnv", "RemoteEnvError", "Dataset", "DatasetError", "EvaluateResult", "EvaluationRequest",
    "Evaluator", "EvaluatorError", "GroupVectorEnv", "MultiTurnTextEnv", "RewardFunction",
    "TextEnv", "TextSpace", "WeightedEvaluator", "evaluate_safely", "list_envs", "load_dataset",
    "make_group_env", "register_envs", "reward_function",
]
