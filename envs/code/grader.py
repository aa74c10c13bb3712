"""Grading model-written Python functions: code extraction, program assembly, scoring.

The score is the fraction of test cases passed. ``metrics``: ``pass_all`` (1 if every case
passed), ``passed``, ``total``, ``timeout`` (the job hit its time limit), ``syntax_error`` (the
program does not compile). Every verdict is made in this (trusted) process by comparing the
values the sandbox returned with expected values that never leave this process.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from rftgym.envs.code.pool import CandidateCallError, Job, SandboxError, SandboxPool, get_shared_pool
from rftgym.envs.code.sandbox import SandboxConfig
from rftgym.envs.code.testspec import TaskTests, SpecError, task_tests
from rftgym.evaluators import EvaluateResult

MAX_CODE_CHARS = 100_000

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+.-]*)[^\n]*\n(.*?)(?:\n?[ \t]*```|\Z)", re.S)
_CODE_START = re.compile(r"^(?:def |async def |class |import |from |@)", re.M)


def _defines(code: str, entry_point: str | None) -> bool:
    if not entry_point:
        return False
    return re.search(rf"^(?:async\s+)?def\s+{re.escape(entry_point)}\s*\(", code, re.M) is not None


def extract_code(reply: str, entry_point: str | None = None) -> str:
    """The code in a reply: the last fenced Python block that defines ``entry_point`` (else the last
    Python block, else the last block), or the raw reply when it has no fence. An unclosed fence
    (a truncated reply) counts up to the end."""
    blocks = [(lang.lower(), body) for lang, body in _FENCE.findall(reply)]
    if not blocks:
        return reply
    python = [b for lang, b in blocks if lang in ("python", "py", "python3", "")]
    for pool in (python, [b for _, b in blocks]):
        defining = [b for b in pool if _defines(b, entry_point)]
        if defining:
            return defining[-1]
    return (python or [b for _, b in blocks])[-1]


def _compiles(src: str) -> str | None:
    """None if ``src`` compiles, else the error text."""
    try:
        compile(src, "solution.py", "exec", dont_inherit=True)
        return None
    except SyntaxError as exc:
        return f"SyntaxError: {exc.msg} (line {exc.lineno})"
    except (ValueError, RecursionError, MemoryError, OverflowError) as exc:
        return f"{type(exc).__name__}: {exc}"


def assemble_program(code: str, prompt: str | None, entry_point: str | None) -> tuple[str | None, str]:
    """Join the extracted code with the task's code prompt.

    A reply that defines the function is appended after the prompt (whose imports and helpers it
    may use; its definition replaces the prompt's stub). Otherwise it is taken as a HumanEval-style
    completion of the prompt's function body. Returns ``(program, "")`` or ``(None, error)``."""
    if len(code) > MAX_CODE_CHARS:
        return None, f"code longer than {MAX_CODE_CHARS} characters"
    if not code.strip():
        return None, "no code in the reply"
    options = []
    if prompt:
        if _defines(code, entry_point) or not code[:1].isspace():
            options = [prompt.rstrip("\n") + "\n\n\n" + code, code, prompt + code]
        else:
            options = [prompt + code, prompt.rstrip("\n") + "\n" + code, code]
    else:
        options = [code]
        start = _CODE_START.search(code)
        if start and start.start() > 0:
            options.append(code[start.start():])  # prose before the code
    first_error = None
    for src in options:
        err = _compiles(src)
        if err is None:
            return src, ""
        first_error = first_error or err
    return None, first_error or "does not compile"


@dataclass(frozen=True)
class CodeTask:
    """What grading needs besides the reply: the function name, the code prompt, the tests."""

    entry_point: str
    tests: TaskTests
    prompt: str | None = None

    @classmethod
    def from_row(cls, ground_truth: Any, row_fields: dict) -> "CodeTask":
        gt = ground_truth if isinstance(ground_truth, dict) else {}
        entry_point = row_fields.get("entry_point", gt.get("entry_point"))
        prompt = row_fields.get("prompt", gt.get("prompt"))
        if not isinstance(entry_point, str) or not entry_point.isidentifier():
            raise SpecError(f"a code task needs 'entry_point', the name of the function to test; got {entry_point!r}")
        if prompt is not None and not isinstance(prompt, str):
            raise SpecError(f"'prompt' must be the code prompt as a string, got {type(prompt).__name__}")
        return cls(entry_point, task_tests(ground_truth, entry_point, prompt), prompt)


def _result(passed: int, total: int, timed_out: bool, syntax_error: bool, reason: str) -> EvaluateResult:
    total = max(total, 1)
    return EvaluateResult(
        score=passed / total, reason=reason,
        metrics={"pass_all": float(passed == total), "passed": float(passed), "total": float(total),
                 "timeout": float(timed_out), "syntax_error": float(syntax_error)})


def grade_program(program: str, task: CodeTask, pool: SandboxPool, timeout: float | None = None) -> EvaluateResult:
    """Run an assembled program against the task's tests in the sandbox and score it."""
    tests = task.tests
    passed, timed_out, notes = 0, False, []
    if tests.cases:
        res = pool.run(Job(program, task.entry_point, [c.args for c in tests.cases], timeout))
        timed_out = res.timed_out
        if res.error:
            notes.append(f"sandbox: {res.error}")
        elif not res.loaded:
            notes.append(f"program failed to load: {res.load_error}" if res.load_error else "program produced no result")
        first_fail = None
        for case, out in zip(tests.cases, res.calls):
            if out is not None and out.ok and case.passes(out.value):
                passed += 1
            elif first_fail is None:
                what = "no answer" if out is None else ("raised " + out.error if not out.ok else "wrong value")
                first_fail = f"{task.entry_point}({case.label}): {what}"
        if first_fail and res.loaded:
            notes.append(f"first failure: {first_fail}")
    if tests.check is not None:
        session = pool.session(program, task.entry_point, timeout)
        try:
            with session as candidate:
                tests.check.run(candidate)
            passed += 1
        except CandidateCallError as exc:
            notes.append(f"check failed: {exc}")
        except SandboxError as exc:
            notes.append(f"sandbox: {exc}")
        except AssertionError:
            notes.append("check failed: an assertion did not hold")
        except Exception as exc:  # noqa: BLE001 - the check ran on the candidate's values
            notes.append(f"check failed: {type(exc).__name__}")
        timed_out = timed_out or session.timed_out
    total = tests.total
    reason = f"{passed}/{total} tests passed" + ("; " + "; ".join(notes) if notes else "")
    return _result(passed, total, timed_out, False, reason[:1000])


def grade(reply: str, task: CodeTask, pool: SandboxPool, timeout: float | None = None) -> EvaluateResult:
    """Extract, assemble and score one reply."""
    code = extract_code(reply, task.entry_point)
    program, error = assemble_program(code, task.prompt, task.entry_point)
    if program is None:
        syntax = error != "no code in the reply"
        return _result(0, task.tests.total, False, syntax, error)
    return grade_program(program, task, pool, timeout)


class CodeEvaluator:
    """Evaluator for code rows: ``fn(messages, ground_truth, entry_point=..., prompt=...)``.

    Picklable: it holds only its configuration; the sandbox pool is shared per process
    (:func:`~rftgym.envs.code.pool.get_shared_pool`) and safe to call from many threads."""

    name = "code_tests"

    def __init__(self, sandbox: SandboxConfig | dict | None = None, timeout: float | None = None):
        self.sandbox = SandboxConfig.coerce(sandbox)
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be positive seconds, got {timeout!r}")
        self.job_timeout = timeout
        self.timeout = None  # no thread-based limit on top: the sandbox enforces its own

    @property
    def pool(self) -> SandboxPool:
        return get_shared_pool(self.sandbox)

    def __call__(self, messages: list[dict], ground_truth: Any = None, **row_fields: Any) -> EvaluateResult:
        if not messages or messages[-1].get("role") != "assistant":
            return _result(0, 1, False, False, "no assistant reply to grade")
        task = CodeTask.from_row(ground_truth, row_fields)
        reply = messages[-1].get("content")
        if not isinstance(reply, str):
            return _result(0, task.tests.total, False, False, "the reply is not text")
        return grade(reply, task, self.pool, self.job_timeout)

    def __repr__(self) -> str:
        return f"CodeEvaluator(mode={self.sandbox.mode!r}, timeout={self.job_timeout})"
