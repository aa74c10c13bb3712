"""Evaluators: reward_function, validation, safety (errors, timeouts) and weighted combination."""

from __future__ import annotations

import math
import pickle
import time

import pytest

import rftgym
from rftgym import EvaluateResult, EvaluatorError, TextEnv, WeightedEvaluator, evaluate_safely, reward_function
from rftgym.evaluators import as_evaluator

MESSAGES = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]


def test_reward_function_accepts_common_return_types():
    @reward_function
    def as_float(messages, ground_truth=None, **kw):
        return 0.25

    @reward_function
    def as_bool(messages, ground_truth=None, **kw):
        return messages[-1]["content"] == ground_truth

    @reward_function(name="dict-style")
    def as_dict(messages, ground_truth=None, **kw):
        return {"score": 0.5, "reason": "half", "metrics": {"a": 1}}

    assert as_float(MESSAGES, "4") == EvaluateResult(0.25)
    assert as_bool(MESSAGES, "4") == EvaluateResult(1.0)
    assert as_dict(MESSAGES) == EvaluateResult(0.5, "half", {"a": 1.0})
    assert as_dict.name == "dict-style" and as_float.name == "as_float"


def test_eval_protocol_style_result_objects_port_as_they_are():
    class MetricResult:
        def __init__(self, score, reason=""):
            self.score, self.reason = score, reason

    class EPResult:  # shape of eval-protocol's EvaluateResult
        def __init__(self):
            self.score, self.reason = 0.75, "ok"
            self.metrics = {"format": MetricResult(1.0), "accuracy": MetricResult(0.5)}

    @reward_function
    def ported(messages, ground_truth=None, **kwargs):
        return EPResult()

    assert ported(MESSAGES) == EvaluateResult(0.75, "ok", {"format": 1.0, "accuracy": 0.5})


@pytest.mark.parametrize("bad, message", [
    (1.5, "returned score 1.5, outside [0, 1]"),
    (-0.1, "returned score -0.1, outside [0, 1]"),
    (float("nan"), "returned a non-finite score: nan"),
    (float("inf"), "returned a non-finite score: inf"),
    ("high", "returned score 'high' of type str"),
    (None, "returned None"),
    ({"reason": "no score"}, "returned a dict without a 'score' key"),
])
def test_invalid_scores_are_clear_errors_naming_the_evaluator(bad, message):
    @reward_function
    def buggy_grader(messages, ground_truth=None, **kw):
        return bad

    with pytest.raises(EvaluatorError, match="evaluator 'buggy_grader'") as excinfo:
        buggy_grader(MESSAGES)
    assert message in str(excinfo.value)
    with pytest.raises(EvaluatorError, match="buggy_grader"):
        evaluate_safely(buggy_grader, MESSAGES)


def test_invalid_metric_is_an_error():
    @reward_function
    def bad_metric(messages, ground_truth=None, **kw):
        return EvaluateResult(1.0, metrics={"x": math.nan})

    with pytest.raises(EvaluatorError, match="bad_metric.*non-finite metric 'x'"):
        bad_metric(MESSAGES)


def test_raising_evaluator_scores_zero_and_env_goes_on():
    @reward_function
    def explodes(messages, ground_truth=None, **kw):
        raise KeyError("missing field")

    result = evaluate_safely(explodes, MESSAGES)
    assert result.score == 0.0
    assert result.reason == "evaluator 'explodes' raised KeyError: 'missing field'"
    env = TextEnv([{"messages": MESSAGES[:1]}], explodes)
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step("4")
    assert reward == 0.0 and terminated and "raised KeyError" in info["evaluation"]["reason"]
    env.reset()
    assert env.step("5")[1] == 0.0  # still usable


def test_timeout_scores_zero_without_waiting_for_the_evaluator():
    @reward_function(timeout=0.2)
    def sleepy(messages, ground_truth=None, **kw):
        time.sleep(3)
        return 1.0

    start = time.monotonic()
    result = evaluate_safely(sleepy, MESSAGES)
    assert time.monotonic() - start < 1.5
    assert result.score == 0.0 and result.reason == "evaluator 'sleepy' timed out after 0.2 s"
    assert result.metrics == {"evaluator_timeout": 1.0}
    env = TextEnv([{"messages": MESSAGES[:1]}], sleepy, evaluator_timeout=0.1)
    env.reset(seed=0)
    assert "timed out after 0.1 s" in env.step("4")[4]["evaluation"]["reason"]


def test_weighted_evaluator_reports_each_part():
    @reward_function
    def correct(messages, ground_truth=None, **kw):
        return EvaluateResult(float(messages[-1]["content"] == ground_truth), metrics={"exact": 1.0})

    @reward_function
    def short(messages, ground_truth=None, **kw):
        return 0.5

    combined = WeightedEvaluator({"correct": (correct, 3.0), "short": (short, 1.0)})
    result = combined(MESSAGES, "4")
    assert result.score == pytest.approx((3 * 1.0 + 1 * 0.5) / 4)
    assert result.metrics == {"correct": 1.0, "correct/exact": 1.0, "short": 0.5}
    assert result.reason == "correct=1; short=0.5"
    with pytest.raises(EvaluatorError, match="weight of part 'x' must be finite and >= 0"):
        WeightedEvaluator({"x": (short, -1)})


def test_evaluator_from_import_string():
    evaluator = as_evaluator("core_evaluators:exact_word")
    assert evaluator(MESSAGES, "4").score == 1.0
    assert as_evaluator("core_evaluators.exact_word").name == "exact_word"
    with pytest.raises(EvaluatorError, match="cannot import module 'no_such_mod'"):
        as_evaluator("no_such_mod:fn")
    with pytest.raises(EvaluatorError, match="module 'core_evaluators' has no attribute 'nope'"):
        as_evaluator("core_evaluators:nope")
    with pytest.raises(EvaluatorError, match="must be callable"):
        as_evaluator(42)


def test_reward_functions_pickle_for_process_pools():
    import core_evaluators

    clone = pickle.loads(pickle.dumps(core_evaluators.exact_word))
    assert clone(MESSAGES, "4").score == 1.0 and clone.name == "exact_word"


def test_plain_callable_is_wrapped():
    env = rftgym.TextEnv([{"messages": MESSAGES[:1], "ground_truth": "4"}],
                         lambda messages, ground_truth=None, **kw: messages[-1]["content"] == ground_truth)
    env.reset(seed=0)
    assert env.step("4")[1] == 1.0
