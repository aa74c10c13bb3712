"""The built-in dataset: deterministic extraction tasks generated from a seed.

Row ``j`` of a split comes from domain ``domains[j % len(domains)]`` (so domains are balanced) at
difficulty ``difficulty`` or, when it is ``None``, cycling through levels 1, 2, 3. Each candidate
is drawn from a seed string (``seed``, split, ``j`` and an attempt counter), so a row does not
depend on the dataset size.

**Disjoint splits.** A task belongs to the test split when a hash of its prompt falls in one of
``TEST_BUCKETS`` buckets, and to the train split otherwise; each split draws candidates from its
own seed stream and skips those that belong to the other split or repeat an earlier row. No
prompt can appear in both splits, whatever their sizes.

Datasets are cached: building many environments with the same arguments is cheap.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Iterable

from rftgym.datasets import Dataset

from .domains import DOMAINS, LEVELS, generate_example
from .prompts import user_prompt

SPLITS = ("train", "test")
DEFAULT_SIZES = {"train": 2400, "test": 360}
TEST_BUCKETS = 4  # one prompt in four belongs to the test split
_MAX_ATTEMPTS = 1000


def split_of(prompt: str) -> str:
    """The split a prompt belongs to (a stable hash of its text)."""
    digest = hashlib.blake2b(prompt.encode("utf-8"), digest_size=8).digest()
    return "test" if int.from_bytes(digest, "big") % TEST_BUCKETS == 0 else "train"


def _check_args(split: str, size: int | None, seed: int, domains: Iterable[str] | None,
                difficulty: int | None) -> tuple[str, int, int, tuple[str, ...], int | None]:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    size = DEFAULT_SIZES[split] if size is None else size
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__}")
    if isinstance(domains, str):
        domains = [domains]
    chosen = tuple(DOMAINS) if domains is None else tuple(domains)
    unknown = [d for d in chosen if d not in DOMAINS]
    if unknown or not chosen:
        raise ValueError(f"unknown domain(s) {unknown or '(none given)'}; choose from {', '.join(DOMAINS)}")
    if difficulty is not None and difficulty not in LEVELS:
        raise ValueError(f"difficulty must be 1, 2, 3 or None (a mix), got {difficulty!r}")
    return split, size, seed, chosen, difficulty


def make_dataset(split: str = "train", size: int | None = None, seed: int = 0,
                 domains: Iterable[str] | None = None, difficulty: int | None = None) -> Dataset:
    """The generated rows of a split (cached).

    Args:
        split: ``"train"`` or ``"test"`` (disjoint).
        size: number of rows (default 2,400 train / 360 test).
        seed: data seed; different seeds give different tasks.
        domains: names from ``DOMAINS`` (default all twelve).
        difficulty: 1, 2 or 3, or ``None`` for an even mix.

    Each row: ``messages`` (the user prompt), ``ground_truth`` (the expected object), ``schema``,
    ``domain``, ``difficulty`` and ``task_id``.
    """
    return _make_dataset(*_check_args(split, size, seed, domains, difficulty))


@functools.lru_cache(maxsize=16)
def _make_dataset(split: str, size: int, seed: int, domains: tuple[str, ...], difficulty: int | None) -> Dataset:
    rows, seen = [], set()
    for j in range(size):
        domain = domains[j % len(domains)]
        level = difficulty or LEVELS[(j // len(domains)) % len(LEVELS)]
        for attempt in range(_MAX_ATTEMPTS):
            example = generate_example(domain, f"rftgym/json_schema/{seed}/{split}/{j}/{attempt}", level)
            prompt = user_prompt(example.schema, example.text)
            if prompt not in seen and split_of(prompt) == split:
                break
        else:  # pragma: no cover - the task space of every domain is far larger
            raise RuntimeError(f"could not generate a new {domain!r} task for row {j}")
        seen.add(prompt)
        rows.append({"task_id": f"{split}-{seed}-{j}", "messages": [{"role": "user", "content": prompt}],
                     "ground_truth": example.expected, "schema": example.schema, "domain": domain,
                     "difficulty": level})
    return Dataset(rows, source=f"rftgym.envs.json_schema({split}, size={size}, seed={seed})")
