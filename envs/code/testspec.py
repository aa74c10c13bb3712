"""Test specifications: what a candidate is called with, and how the trusted parent judges each value.

A task's tests come from its ground truth:

* ``{"tests": [{"input": "[1, 2], 3", "output": "(1, 2)"}, ...]}`` - Python-literal sources of the
  argument list and of the expected value (tuples, sets and ``None`` survive), or
  ``{"args": [...], "expected": ...}`` with plain JSON values. ``"tolerance": 1e-6`` (on the
  ground truth or on one test) compares numbers approximately.
* ``{"check": "def check(candidate): ..."}`` - HumanEval-style test code. Each top-level
  ``assert`` that calls the candidate once with arguments computable up front becomes one test
  case: the arguments go to the sandbox, and the assertion is evaluated in the parent on the
  returned value. A check that cannot be split that way (loops, random inputs, several calls in
  one assertion) runs whole in the parent with a proxy that forwards each call to the sandbox;
  it counts as one test.

Expected values and test code stay in the parent: only arguments enter the sandbox.
"""

from __future__ import annotations

import ast
import functools
import math
from dataclasses import dataclass
from typing import Any, Callable

from rftgym.envs.code.worker import ValueDecodeError, decode_value, encode_value

RESULT_NAME = "__rftgym_result__"


class SpecError(ValueError):
    """A task's tests are malformed (a dataset problem, not a model problem)."""


# ---------------------------------------------------------------------------------------------
# Predicates (run in the parent on decoded builtin values)
# ---------------------------------------------------------------------------------------------

def _approx_equal(a: Any, b: Any, tol: float) -> bool:
    num = (int, float)
    if isinstance(a, num) and isinstance(b, num) and not isinstance(a, bool) and not isinstance(b, bool):
        return math.isclose(a, b, rel_tol=0.0, abs_tol=tol) if (math.isfinite(a) and math.isfinite(b)) else a == b
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and type(a) is type(b):
        return len(a) == len(b) and all(_approx_equal(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_approx_equal(a[k], b[k], tol) for k in a)
    return a == b


@dataclass(frozen=True)
class Equals:
    """``actual == expected`` (Python equality on builtin values), or within ``tolerance``."""

    expected: Any
    tolerance: float | None = None

    def __call__(self, actual: Any) -> bool:
        if self.tolerance is not None:
            return _approx_equal(actual, self.expected, self.tolerance)
        return bool(actual == self.expected)


@dataclass(frozen=True)
class AssertExpr:
    """A HumanEval assertion with the candidate call replaced by the returned value."""

    code: Any  # compiled ast.Expression
    scope: dict  # the check's variables at that point (trusted, parent-side)
    source: str = ""

    def __call__(self, actual: Any) -> bool:
        return bool(eval(self.code, {**self.scope, RESULT_NAME: actual}))  # noqa: S307 - trusted test code


@dataclass(frozen=True)
class CallTest:
    args: tuple
    predicate: Callable[[Any], bool]
    label: str = ""  # the arguments as source text, for messages

    def passes(self, actual: Any) -> bool:
        try:
            return bool(self.predicate(actual))
        except Exception:  # noqa: BLE001 - a value the assertion cannot handle fails the test
            return False


@dataclass(frozen=True)
class CheckProgram:
    """A whole ``check(candidate)`` function, run in the parent against a sandbox proxy."""

    prompt_code: Any
    test_code: Any
    entry_point: str

    def run(self, candidate: Callable) -> None:
        """Raise if the check fails. Runs in a fresh namespace each time (thread-safe)."""
        ns: dict = {"__name__": "__check__"}
        if self.prompt_code is not None:
            exec(self.prompt_code, ns)  # noqa: S102 - trusted dataset code (definitions)
        exec(self.test_code, ns)  # noqa: S102
        ns[self.entry_point] = candidate
        check = ns.get("check")
        if not callable(check):
            raise SpecError("the test code defines no check(candidate) function")
        check(candidate)


@dataclass(frozen=True)
class TaskTests:
    cases: tuple[CallTest, ...] = ()
    check: CheckProgram | None = None

    @property
    def total(self) -> int:
        return len(self.cases) + (1 if self.check is not None else 0)


# ---------------------------------------------------------------------------------------------
# Input/output pairs
# ---------------------------------------------------------------------------------------------

def _literal(src: Any, what: str) -> Any:
    if not isinstance(src, str):
        raise SpecError(f"{what} must be a string of Python literal source, got {type(src).__name__}")
    try:
        return ast.literal_eval(src.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
        raise SpecError(f"{what} is not a Python literal ({type(exc).__name__}): {src[:80]!r}") from None


def _check_transportable(value: Any, what: str) -> None:
    try:
        same = decode_value(encode_value(value)) == value
    except (ValueError, ValueDecodeError, RecursionError, TypeError):
        same = False
    if not same:
        raise SpecError(f"{what} holds a value that cannot be sent to the sandbox: {value!r:.80}")


def parse_pair(test: Any, i: int, tolerance: float | None) -> CallTest:
    where = f"tests[{i}]"
    if not isinstance(test, dict):
        raise SpecError(f"{where} must be an object with input/output or args/expected")
    tol = test.get("tolerance", tolerance)
    if tol is not None and not (isinstance(tol, (int, float)) and not isinstance(tol, bool) and tol >= 0):
        raise SpecError(f"{where}: tolerance must be a non-negative number, got {tol!r}")
    if "input" in test and "output" in test:
        src = test["input"]
        args = _literal(f"({src},)" if isinstance(src, str) and src.strip() else "()", f"{where}.input")
        expected = _literal(test["output"], f"{where}.output")
        label = src.strip()
    elif "args" in test and "expected" in test:
        if not isinstance(test["args"], list):
            raise SpecError(f"{where}.args must be a list of arguments, got {type(test['args']).__name__}")
        args, expected = tuple(test["args"]), test["expected"]
        label = ", ".join(map(repr, args))[:200]
    else:
        raise SpecError(f"{where} needs 'input' and 'output' (Python literals) or 'args' and 'expected' "
                            f"(JSON), got keys {sorted(test)}")
    _check_transportable(args, f"{where} arguments")
    return CallTest(args, Equals(expected, tol), label)


# ---------------------------------------------------------------------------------------------
# HumanEval-style check(candidate) code
# ---------------------------------------------------------------------------------------------

def _refs(node: ast.AST, names: set[str]) -> list[ast.Name]:
    return [n for n in ast.walk(node) if isinstance(n, ast.Name) and n.id in names]


class _ReplaceCall(ast.NodeTransformer):
    def __init__(self, target: ast.Call):
        self.target = target

    def visit_Call(self, node):
        if node is self.target:
            return ast.copy_location(ast.Name(RESULT_NAME, ast.Load()), node)
        return self.generic_visit(node)


def _compile_prompt(prompt: str | None):
    if not prompt:
        return None
    try:
        return compile(prompt, "<prompt>", "exec", dont_inherit=True)
    except SyntaxError:
        return None  # a prose prompt; the check must not depend on it


@functools.lru_cache(maxsize=2048)
def convert_check(test_source: str, prompt: str | None, entry_point: str) -> TaskTests:
    """Split HumanEval-style test code into argument/assertion cases where possible (cached)."""
    try:
        tree = ast.parse(test_source)
        test_code = compile(tree, "<check>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        raise SpecError(f"the check code does not parse: {exc}") from None
    checks = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check"]
    if len(checks) != 1 or len(checks[0].args.args) != 1:
        raise SpecError("the check code must define exactly one function check(candidate)")
    check = checks[0]
    prompt_code = _compile_prompt(prompt)
    whole = TaskTests(check=CheckProgram(prompt_code, test_code, entry_point))

    names = {check.args.args[0].arg, entry_point}
    scope: dict = {"__name__": "__check__"}
    try:
        if prompt_code is not None:
            exec(prompt_code, scope)  # noqa: S102 - trusted dataset code
        module_rest = ast.Module([n for n in tree.body if n is not check], type_ignores=[])
        exec(compile(module_rest, "<check>", "exec", dont_inherit=True), scope)  # noqa: S102
    except Exception:  # noqa: BLE001 - fall back to running the check whole
        return whole
    cases = []
    for stmt in check.body:
        # an assertion's message is only evaluated on failure, so only its test matters
        refs = _refs(stmt.test if isinstance(stmt, ast.Assert) else stmt, names)
        if isinstance(stmt, ast.Assert) and refs:
            calls = [n for n in ast.walk(stmt.test) if isinstance(n, ast.Call)
                     and isinstance(n.func, ast.Name) and n.func.id in names]
            if len(refs) != 1 or len(calls) != 1 or calls[0].keywords \
                    or any(isinstance(a, ast.Starred) for a in calls[0].args) or _refs(ast.Tuple(calls[0].args), names):
                return whole
            call = calls[0]
            try:
                args_expr = ast.fix_missing_locations(ast.Expression(ast.Tuple(call.args, ast.Load())))
                args = eval(compile(args_expr, "<check>", "eval"), scope)  # noqa: S307
                _check_transportable(args, "check arguments")
            except Exception:  # noqa: BLE001
                return whole
            test_expr = _ReplaceCall(call).visit(ast.Expression(stmt.test))
            ast.fix_missing_locations(test_expr)
            code = compile(test_expr, "<check>", "eval")
            cases.append(CallTest(tuple(args), AssertExpr(code, dict(scope), ast.unparse(stmt.test)[:200]),
                                  ", ".join(ast.unparse(a) for a in call.args)[:200]))
        elif refs:
            return whole
        elif isinstance(stmt, (ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Import, ast.ImportFrom,
                               ast.Pass, ast.Assert)):
            try:
                exec(compile(ast.Module([stmt], type_ignores=[]), "<check>", "exec"), scope)  # noqa: S102
            except Exception:  # noqa: BLE001
                return whole
        else:
            return whole
    if not cases:
        return whole
    return TaskTests(cases=tuple(cases))


# ---------------------------------------------------------------------------------------------
# From a row's ground truth
# ---------------------------------------------------------------------------------------------

def task_tests(ground_truth: Any, entry_point: str, prompt: str | None = None) -> TaskTests:
    """The tests of one task from its ground truth (see the module docstring for the format)."""
    if not isinstance(ground_truth, dict):
        raise SpecError(f"the ground truth of a code task must be an object with 'tests' and/or "
                            f"'check', got {type(ground_truth).__name__}")
    unknown = set(ground_truth) - {"tests", "check", "tolerance", "entry_point", "prompt"}
    if unknown:
        raise SpecError(f"unknown ground-truth key(s) {sorted(unknown)}; use 'tests', 'check', 'tolerance'")
    tests = ground_truth.get("tests") or []
    check = ground_truth.get("check")
    if not isinstance(tests, list):
        raise SpecError(f"'tests' must be a list, got {type(tests).__name__}")
    if not tests and not check:
        raise SpecError("a code task needs at least one test ('tests' or 'check')")
    tolerance = ground_truth.get("tolerance")
    cases = [parse_pair(t, i, tolerance) for i, t in enumerate(tests)]
    checked = TaskTests()
    if check is not None:
        if not isinstance(check, str):
            raise SpecError(f"'check' must be Python source defining check(candidate), got {type(check).__name__}")
        checked = convert_check(check, prompt, entry_point)
    return TaskTests(cases=tuple(cases) + checked.cases, check=checked.check)


__all__ = ["AssertExpr", "CheckProgram", "Equals", "TaskTests", "CallTest", "SpecError",
           "convert_check", "parse_pair", "task_tests"]
