"""Symbolic equality with ``math-verify``, in worker processes that are killed on a time limit.

math-verify's own timeouts rely on ``signal.alarm``: they only work in the main thread, and
some inputs (``9^{9^{9^{9}}}``, deeply nested brackets) still hang or exhaust memory. Here every
check runs in a separate Python process (``verify_worker.py``) that the caller kills with
SIGKILL when the time limit passes; the next check starts a fresh worker. Workers are started
lazily, reused across checks, shared by the threads of a process, and limited to ``max_workers``
at a time. Results are cached by (expected, answer) text, so a group of identical replies costs
one check.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

WORKER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "verify_worker.py")
STARTUP_TIMEOUT = 60.0
DEFAULT_MAX_WORKERS = 2


@dataclass(frozen=True)
class SymbolicResult:
    """``equal`` is None when no verdict was reached (time limit, crash); ``detail`` says why."""

    equal: bool | None
    detail: str = ""


class _Worker:
    def __init__(self) -> None:
        # Run the script by path with ``-c`` so neither rftgym nor this folder is put on sys.path.
        code = f"import runpy; runpy.run_path({WORKER_SCRIPT!r}, run_name='__main__')"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)
        self._buffer = b""
        ready = self.read_line(STARTUP_TIMEOUT)
        if ready is None or not ready.get("ready"):
            exited = self.proc.poll() is not None
            self.kill()
            if ready is not None:
                problem = str(ready.get("fatal", ready))
            elif exited:
                problem = "the process exited before it was ready"
            else:
                problem = f"it was not ready within {STARTUP_TIMEOUT:g} s"
            raise RuntimeError(f"math-verify worker failed: {problem}")

    def read_line(self, timeout: float) -> dict | None:
        """One JSON line from the worker, or None on timeout or end of output."""
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            readable, _, _ = select.select([fd], [], [], remaining)
            if not readable:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            return json.loads(line)
        except ValueError:
            return {"error": "math-verify worker sent malformed output"}

    def check(self, gold: str, pred: str, timeout: float) -> SymbolicResult:
        request = json.dumps({"gold": gold, "pred": pred, "cpu": int(timeout * 2) + 2}) + "\n"
        try:
            self.proc.stdin.write(request.encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.kill()
            return SymbolicResult(None, "math-verify worker died")
        reply = self.read_line(timeout)
        if reply is None:
            alive = self.proc.poll() is None
            self.kill()
            return SymbolicResult(None, f"math-verify timed out after {timeout:g} s" if alive
                                  else "math-verify worker died")
        if "error" in reply:
            return SymbolicResult(None, str(reply["error"]))
        return SymbolicResult(bool(reply.get("equal")), str(reply.get("detail", "")))

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass


class SymbolicVerifier:
    """A pool of at most ``max_workers`` math-verify worker processes (thread-safe)."""

    def __init__(self, max_workers: int = DEFAULT_MAX_WORKERS) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be >= 1, got {max_workers}")
        self.max_workers = max_workers
        self._idle: list[_Worker] = []
        self._count = 0
        self._cond = threading.Condition()
        self._closed = False

    def _acquire(self) -> _Worker:
        with self._cond:
            while True:
                if self._closed:
                    raise RuntimeError("the symbolic verifier is closed")
                while self._idle:
                    worker = self._idle.pop()
                    if worker.alive:
                        return worker
                    worker.kill()
                    self._count -= 1
                if self._count < self.max_workers:
                    self._count += 1
                    break
                self._cond.wait()
        try:
            return _Worker()
        except BaseException:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            raise

    def _release(self, worker: _Worker) -> None:
        with self._cond:
            if worker.alive and not self._closed:
                self._idle.append(worker)
            else:
                worker.kill()
                self._count -= 1
            self._cond.notify()

    def check(self, gold: str, pred: str, timeout: float) -> SymbolicResult:
        """Whether math-verify finds ``pred`` equal to ``gold``; never raises, never hangs."""
        try:
            worker = self._acquire()
        except RuntimeError as exc:
            return SymbolicResult(None, str(exc))
        try:
            return worker.check(gold, pred, timeout)
        finally:
            self._release(worker)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._count -= len(idle)
            self._cond.notify_all()
        for worker in idle:
            worker.kill()


_lock = threading.Lock()
_verifier: SymbolicVerifier | None = None
_owner_pid: int | None = None
_cache: OrderedDict[tuple[str, str, float], SymbolicResult] = OrderedDict()
CACHE_SIZE = 8192


def get_verifier() -> SymbolicVerifier:
    """The process-wide verifier (a forked child gets its own, never its parent's workers)."""
    global _verifier, _owner_pid
    with _lock:
        if _verifier is None or _owner_pid != os.getpid():
            _verifier = SymbolicVerifier(int(os.environ.get("RFTGYM_VERIFY_WORKERS", DEFAULT_MAX_WORKERS)))
            _owner_pid = os.getpid()
            _cache.clear()
        return _verifier


def _shutdown() -> None:
    if _verifier is not None and _owner_pid == os.getpid():
        _verifier.close()


atexit.register(_shutdown)


def symbolic_equal(gold: str, pred: str, timeout: float = 3.0) -> SymbolicResult:
    """math-verify's verdict on ``pred`` against ``gold`` within ``timeout`` seconds.

    Verdicts and time-outs are cached per process (a repeated hostile answer costs one time-out);
    failures of the worker itself are not.
    """
    verifier = get_verifier()
    key = (gold, pred, float(timeout))
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    result = verifier.check(gold, pred, float(timeout))
    if result.equal is not None or not result.detail.startswith("math-verify worker"):
        with _lock:
            _cache[key] = result
            if len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
    return result
