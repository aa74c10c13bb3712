"""Module-level evaluators used by tests that need picklable or importable evaluators."""

import time

import rftgym


@rftgym.reward_function
def exact_word(messages, ground_truth=None, **fields):
    return float(messages[-1]["content"].strip() == ground_truth)


@rftgym.reward_function
def slow_exact_word(messages, ground_truth=None, **fields):
    time.sleep(0.1)
    return float(messages[-1]["content"].strip() == ground_truth)
