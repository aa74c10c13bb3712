"""``rft/Custom-v0``: an environment from any dataset and evaluator."""

from __future__ import annotations

from typing import Any

from rftgym.core import TextEnv


class CustomEnv(TextEnv):
    """A single-turn env from your own data.

    Args:
        dataset: a JSONL path (Fireworks / OpenAI RFT rows), a list of row dicts or a ``Dataset``.
        evaluator: a callable ``fn(messages, ground_truth, **row_fields)`` or a
            ``"package.module:function"`` string.
        **kwargs: ``system_prompt``, ``evaluator_timeout``, ``render_mode`` (see ``TextEnv``).

    Example::

        env = gym.make("rft/Custom-v0", dataset="rows.jsonl", evaluator="my_pkg.my_mod:my_fn")
    """

    def __init__(self, dataset: Any = None, evaluator: Any = None, **kwargs: Any):
        if dataset is None or evaluator is None:
            raise TypeError("rft/Custom-v0 needs dataset=... (JSONL path or rows) and evaluator=... "
                            "(callable or 'module:function')")
        super().__init__(dataset, evaluator, **kwargs)
