"""Evaluators: functions that score a model's reply from 0.0 to 1.0.

An evaluator is any callable ``fn(messages, ground_truth, **row_fields) -> EvaluateResult``
where ``messages`` is the whole conversation including the model's final reply and
``row_fields`` are the other fields of the dataset row. ``@reward_function`` turns a plain
function with that signature (the eval-protocol convention) into a validated evaluator.
"""

from __future__ import annotations

import functools
import importlib
import math
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, runtime_checkable


class EvaluatorError(ValueError):
    """An evaluator returned something that is not a valid score, or cannot be loaded."""


@dataclass(frozen=True)
class EvaluateResult:
    """The score of one reply: ``score`` in [0, 1], a human-readable ``reason`` and named metrics."""

    score: float
    reason: str = ""
    metrics: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"score": self.score, "reason": self.reason, "metrics": dict(self.metrics)}


@runtime_checkable
class Evaluator(Protocol):
    """The evaluator protocol."""

    def __call__(
        self, messages: list[dict], ground_truth: Any = None, **row_fields: Any
    ) -> EvaluateResult: ...


def evaluator_name(evaluator: Any) -> str:
    """A readable name for an evaluator (its ``name`` attribute, function or class name)."""
    name = getattr(evaluator, "name", None)
    if isinstance(name, str):
        return name
    name = getattr(evaluator, "__qualname__", None) or type(evaluator).__name__
    return str(name)


def _as_float(value: Any, what: str, name: str) -> float:
    score = getattr(value, "score", value)  # eval-protocol MetricResult / EvaluateResult objects
    if isinstance(score, bool):
        return float(score)
    try:
        number = float(score)
    except (TypeError, ValueError):
        raise EvaluatorError(
            f"evaluator {name!r} returned {what} {score!r} of type {type(score).__name__}; "
            "expected a float in [0, 1]"
        ) from None
    if not math.isfinite(number):
        raise EvaluatorError(f"evaluator {name!r} returned a non-finite {what}: {number}")
    return number


def to_evaluate_result(value: Any, name: str) -> EvaluateResult:
    """Validate an evaluator's return value and convert it to an ``EvaluateResult``.

    Accepts an ``EvaluateResult``, a number or bool, a dict with ``score`` (and optional
    ``reason``/``metrics``), or any object with ``score``/``reason``/``metrics`` attributes (such
    as eval-protocol's result type). Raises ``EvaluatorError`` naming the evaluator otherwise.
    """
    if isinstance(value, Mapping):
        if "score" not in value:
            raise EvaluatorError(f"evaluator {name!r} returned a dict without a 'score' key")
        raw_score, reason, metrics = value["score"], value.get("reason"), value.get("metrics")
    elif value is None:
        raise EvaluatorError(f"evaluator {name!r} returned None; expected a score in [0, 1]")
    elif hasattr(value, "score") and not isinstance(value, (int, float)):
        raw_score = value.score
        reason, metrics = getattr(value, "reason", ""), getattr(value, "metrics", None)
    else:
        raw_score, reason, metrics = value, "", None
    score = _as_float(raw_score, "score", name)
    if not 0.0 <= score <= 1.0:
        raise EvaluatorError(f"evaluator {name!r} returned score {score}, outside [0, 1]")
    clean_metrics = {
        str(key): _as_float(metric, f"metric {key!r}", name) for key, metric in (metrics or {}).items()
    }
    return EvaluateResult(score=score, reason="" if reason is None else str(reason),
                          metrics=clean_metrics)


class RewardFunction:
    """A validated evaluator made from ``fn(messages, ground_truth, **row_fields)``."""

    def __init__(self, fn: Callable[..., Any], name: str | None = None, timeout: float | None = None):
        self.fn = fn
        self.name = name or getattr(fn, "__name__", type(fn).__name__)
        self.timeout = timeout
        functools.update_wrapper(self, fn)

    def __call__(self, messages: list[dict], ground_truth: Any = None, **row_fields: Any) -> EvaluateResult:
        return to_evaluate_result(self.fn(messages, ground_truth, **row_fields), self.name)

    def __reduce__(self):
        # Picklable for process pools: a decorated module-level function is found by name.
        module = importlib.import_module(self.__module__) if hasattr(self, "__module__") else None
        qualname = getattr(self, "__qualname__", "")
        try:
            found = functools.reduce(getattr, qualname.split("."), module)
        except (AttributeError, TypeError):
            found = None
        if found is self:
            return qualname
        return (RewardFunction, (self.fn, self.name, self.timeout))

    def __repr__(self) -> str:
        return f"RewardFunction({self.name})"


def reward_function(fn: Callable[..., Any] | None = None, *, name: str | None = None,
                    timeout: float | None = None) -> Any:
    """Decorator: turn ``fn(messages, ground_truth, **row_fields)`` into an evaluator.

    ``fn`` may return an ``EvaluateResult``, a float, a bool or a dict with ``score``. The score
    must be finite and within [0, 1]; anything else raises ``EvaluatorError`` naming ``fn``.
    ``timeout`` (seconds) is the default time limit used by environments.

    Example::

        @rftgym.reward_function
        def exact(messages, ground_truth=None, **kwargs):
            return float(messages[-1]["content"].strip() == ground_truth)
    """
    if fn is None:
        return lambda f: RewardFunction(f, name=name, timeout=timeout)
    return RewardFunction(fn, name=name, timeout=timeout)


def as_evaluator(spec: Any) -> Any:
    """Resolve an evaluator from a callable or a ``"package.module:function"`` string."""
    if isinstance(spec, str):
        module_name, sep, attr = spec.partition(":")
        if not sep:
            module_name, _, attr = spec.rpartition(".")
        if not module_name or not attr:
            raise EvaluatorError(
                f"evaluator {spec!r} is not of the form 'package.module:function'")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise EvaluatorError(f"cannot import module {module_name!r} for evaluator {spec!r}: {exc}") from None
        try:
            spec = functools.reduce(getattr, attr.split("."), module)
        except AttributeError:
            raise EvaluatorError(f"module {module_name!r} has no attribute {attr!r} (evaluator {spec!r})") from None
    if not callable(spec):
        raise EvaluatorError(f"evaluator must be callable, got {type(spec).__name__}")
    if isinstance(spec, (RewardFunction, WeightedEvaluator)) or hasattr(spec, "name"):
        return spec
    return RewardFunction(spec)


def _call_checked(evaluator: Any, messages: list, ground_truth: Any, row_fields: Mapping) -> EvaluateResult:
    return to_evaluate_result(evaluator(messages, ground_truth, **row_fields), evaluator_name(evaluator))


def evaluate_safely(evaluator: Any, messages: list[dict], ground_truth: Any = None,
                    row_fields: Mapping[str, Any] | None = None,
                    timeout: float | None = None) -> EvaluateResult:
    """Run an evaluator; an exception or a timeout gives score 0 with the error in ``reason``.

    An evaluator that returns an invalid score (NaN, outside [0, 1], wrong type) is a bug in the
    evaluator, not in the reply: that raises ``EvaluatorError``. The time limit is enforced by
    waiting on a daemon thread; an evaluator that must be killed (untrusted code, solvers that
    can hang) should run its work in a subprocess, as the built-in math and code evaluators do.
    """
    row_fields = dict(row_fields or {})
    name = evaluator_name(evaluator)
    if timeout is None:
        timeout = getattr(evaluator, "timeout", None)
    if timeout is None:
        try:
            return _call_checked(evaluator, messages, ground_truth, row_fields)
        except EvaluatorError:
            raise
        except Exception as exc:  # noqa: BLE001 - evaluators are user code
            return EvaluateResult(0.0, f"evaluator {name!r} raised {type(exc).__name__}: {exc}")

    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = _call_checked(evaluator, messages, ground_truth, row_fields)
        except BaseException as exc:  # noqa: BLE001
            outcome["error"] = exc

    worker = threading.Thread(target=target, name=f"evaluator-{name}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        return EvaluateResult(0.0, f"evaluator {name!r} timed out after {timeout:g} s",
                              {"evaluator_timeout": 1.0})
    if "error" in outcome:
        exc = outcome["error"]
        if isinstance(exc, EvaluatorError):
            raise exc
        return EvaluateResult(0.0, f"evaluator {name!r} raised {type(exc).__name__}: {exc}")
    return outcome["result"]


class WeightedEvaluator:
    """A weighted combination of evaluators (like a multi grader).

    ``score = sum(w_i * score_i) / sum(w_i)``; each part's score is reported in ``metrics`` under
    its name, together with the parts' own metrics prefixed ``"<name>/"``.
    """

    def __init__(self, parts: Mapping[str, tuple[Any, float]], name: str = "weighted",
                 timeout: float | None = None):
        if not parts:
            raise EvaluatorError("WeightedEvaluator needs at least one part")
        self.parts = {}
        for part_name, (evaluator, weight) in parts.items():
            weight = float(weight)
            if not math.isfinite(weight) or weight < 0:
                raise EvaluatorError(f"weight of part {part_name!r} must be finite and >= 0, got {weight}")
            self.parts[part_name] = (as_evaluator(evaluator), weight)
        self.total_weight = sum(w for _, w in self.parts.values())
        if self.total_weight <= 0:
            raise EvaluatorError("WeightedEvaluator weights sum to zero")
        self.name = name
        self.timeout = timeout

    def __call__(self, messages: list[dict], ground_truth: Any = None, **row_fields: Any) -> EvaluateResult:
        total, reasons, metrics = 0.0, [], {}
        for part_name, (evaluator, weight) in self.parts.items():
            result = evaluate_safely(evaluator, messages, ground_truth, row_fields)
            total += weight * result.score
            metrics[part_name] = result.score
            metrics.update({f"{part_name}/{k}": v for k, v in result.metrics.items()})
            reasons.append(f"{part_name}={result.score:.3g}" + (f" ({result.reason})" if result.reason else ""))
        return EvaluateResult(min(1.0, max(0.0, total / self.total_weight)), "; ".join(reasons), metrics)
