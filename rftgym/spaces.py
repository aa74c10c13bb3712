"""Gymnasium spaces for chat observations and free-text actions.

Gymnasium's built-in ``Text`` space only holds strings over a fixed character set, which cannot
represent arbitrary Unicode chat. ``ChatSpace`` holds an OpenAI-style conversation (a list of
``{"role", "content"}`` dicts) and ``TextSpace`` any Unicode string. Both are registered with
Gymnasium's vector utilities (batching, concatenation and shared memory), so
``gym.make_vec(..., vectorization_mode="sync" | "async")`` works.
"""

from __future__ import annotations

import json
import multiprocessing as mp
from typing import Any

import numpy as np
from gymnasium.spaces import Space
from gymnasium.vector.utils import (
    create_empty_array,
    create_shared_memory,
    read_from_shared_memory,
    write_to_shared_memory,
)

ROLES = ("system", "user", "assistant", "tool")
# Optional message keys beyond role/content (OpenAI function-calling fields).
OPTIONAL_MESSAGE_KEYS = ("name", "tool_call_id", "tool_calls")

# Characters used by ``sample``: ASCII, accented Latin, Greek, CJK, emoji and whitespace.
_SAMPLE_ALPHABET = list(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?'\"(){}[]<>+-*/=\n\t"
    "éèüñçßøåαβγδλπΣΩ中文字日本語한국어🙂🚀∑∫√"
)


def _random_text(rng: np.random.Generator, max_length: int) -> str:
    length = int(rng.integers(0, max_length + 1))
    return "".join(rng.choice(_SAMPLE_ALPHABET, size=length))


def is_message(value: Any) -> bool:
    """True when ``value`` is a well-formed chat message dict."""
    if not isinstance(value, dict) or value.get("role") not in ROLES:
        return False
    if not isinstance(value.get("content"), str):
        return False
    return all(key in ("role", "content") or key in OPTIONAL_MESSAGE_KEYS for key in value)


class TextSpace(Space[str]):
    """Any Unicode string of at most ``max_length`` characters (a model's reply)."""

    def __init__(self, max_length: int = 1_000_000, seed: int | np.random.Generator | None = None):
        if max_length < 1:
            raise ValueError(f"TextSpace max_length must be >= 1, got {max_length}")
        self.max_length = int(max_length)
        super().__init__(shape=None, dtype=None, seed=seed)

    @property
    def is_np_flattenable(self) -> bool:
        return False

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        if mask is not None or probability is not None:
            raise NotImplementedError("TextSpace.sample does not support masks")
        return _random_text(self.np_random, min(self.max_length, 64))

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and len(x) <= self.max_length

    def __repr__(self) -> str:
        return f"TextSpace(max_length={self.max_length})"

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, TextSpace) and other.max_length == self.max_length


class ChatSpace(Space[list]):
    """A conversation: a list of ``{"role", "content"}`` message dicts (OpenAI chat format).

    ``max_bytes`` bounds the UTF-8 JSON size of one conversation; it sizes the shared-memory
    buffers of asynchronous vector environments.
    """

    def __init__(self, max_bytes: int = 1 << 20, seed: int | np.random.Generator | None = None):
        self.max_bytes = int(max_bytes)
        super().__init__(shape=None, dtype=None, seed=seed)

    @property
    def is_np_flattenable(self) -> bool:
        return False

    def sample(self, mask: Any = None, probability: Any = None) -> list[dict[str, str]]:
        if mask is not None or probability is not None:
            raise NotImplementedError("ChatSpace.sample does not support masks")
        rng = self.np_random
        messages = []
        if rng.random() < 0.5:
            messages.append({"role": "system", "content": _random_text(rng, 32)})
        for _ in range(int(rng.integers(0, 2))):
            messages.append({"role": "user", "content": _random_text(rng, 64)})
            messages.append({"role": "assistant", "content": _random_text(rng, 64)})
        messages.append({"role": "user", "content": _random_text(rng, 64)})
        return messages

    def contains(self, x: Any) -> bool:
        if not isinstance(x, list) or not all(is_message(m) for m in x):
            return False
        return len(encode_chat(x)) <= self.max_bytes

    def __repr__(self) -> str:
        return f"ChatSpace(max_bytes={self.max_bytes})"

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, ChatSpace) and other.max_bytes == self.max_bytes


def encode_chat(messages: list) -> bytes:
    return json.dumps(messages, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# --- Gymnasium vector utilities -------------------------------------------------------------
# Batching, concatenation and iteration use Gymnasium's generic ``Space`` handlers (a Tuple of
# copies / a tuple of values). Empty arrays and shared memory need explicit handlers.


@create_empty_array.register(TextSpace)
def _empty_text(space: TextSpace, n: int = 1, fn: Any = np.zeros) -> tuple[str, ...]:
    return tuple("" for _ in range(n))


@create_empty_array.register(ChatSpace)
def _empty_chat(space: ChatSpace, n: int = 1, fn: Any = np.zeros) -> tuple[list, ...]:
    return tuple([] for _ in range(n))


_LENGTH_BYTES = 4


def _slot_size(space: Space) -> int:
    limit = space.max_bytes if isinstance(space, ChatSpace) else 4 * space.max_length
    return _LENGTH_BYTES + limit


@create_shared_memory.register(TextSpace)
@create_shared_memory.register(ChatSpace)
def _create_shared(space: Space, n: int = 1, ctx: Any = mp) -> Any:
    return ctx.Array("B", n * _slot_size(space))


@write_to_shared_memory.register(TextSpace)
@write_to_shared_memory.register(ChatSpace)
def _write_shared(space: Space, index: int, value: Any, shared_memory: Any) -> None:
    data = encode_chat(value) if isinstance(space, ChatSpace) else value.encode("utf-8")
    size = _slot_size(space)
    if len(data) > size - _LENGTH_BYTES:
        raise ValueError(
            f"observation of {len(data)} bytes does not fit {space!r}; raise max_bytes or use "
            "shared_memory=False"
        )
    buffer = np.frombuffer(shared_memory.get_obj(), dtype=np.uint8)
    start = index * size
    buffer[start : start + _LENGTH_BYTES] = np.frombuffer(
        len(data).to_bytes(_LENGTH_BYTES, "little"), dtype=np.uint8
    )
    buffer[start + _LENGTH_BYTES : start + _LENGTH_BYTES + len(data)] = np.frombuffer(
        data, dtype=np.uint8
    )


class SharedMemoryView(tuple):
    """Live view of the observations in an async vector env's shared buffer.

    Gymnasium reads shared memory once, when the vector env is built, and expects a view that
    later writes show through (numpy arrays do). This tuple subclass decodes the slots on every
    access; ``copy.deepcopy`` (what ``AsyncVectorEnv`` returns to the caller) gives plain values.
    """

    def __new__(cls, space: Space, shared_memory: Any, n: int):
        view = super().__new__(cls, range(n))
        view._space, view._memory, view._n = space, shared_memory, n
        return view

    def _decode(self, i: int) -> Any:
        buffer = np.frombuffer(self._memory.get_obj(), dtype=np.uint8)
        start = i * _slot_size(self._space)
        length = int.from_bytes(buffer[start : start + _LENGTH_BYTES].tobytes(), "little")
        text = buffer[start + _LENGTH_BYTES : start + _LENGTH_BYTES + length].tobytes().decode("utf-8")
        if isinstance(self._space, ChatSpace):
            return json.loads(text) if text else []
        return text

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return tuple(self._decode(j) for j in range(self._n)[i])
        return self._decode(range(self._n)[i])

    def __iter__(self):
        return (self._decode(i) for i in range(self._n))

    def __eq__(self, other: Any) -> bool:
        return tuple(self) == tuple(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(tuple(self))

    def __deepcopy__(self, memo: dict) -> tuple:
        return tuple(self)

    def __reduce__(self):
        return (tuple, (tuple(self),))


@read_from_shared_memory.register(TextSpace)
@read_from_shared_memory.register(ChatSpace)
def _read_shared(space: Space, shared_memory: Any, n: int = 1) -> SharedMemoryView:
    return SharedMemoryView(space, shared_memory, n)


__all__ = ["ChatSpace", "TextSpace", "ROLES", "is_message"]
