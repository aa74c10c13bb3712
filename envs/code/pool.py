"""A warm pool of sandboxed interpreters that fork one child per job.

``SandboxPool.run(job)`` is thread-safe: each call borrows one idle server, so as many jobs run at
once as the pool has servers (default: the number of usable cores). A server that dies, hangs past
its deadline or breaks the protocol is killed and replaced on its next use. Everything the
sandbox sends is parsed strictly and size-capped; nothing it says is taken as a verdict.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import json
import os
import queue
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from rftgym.envs.code import sandbox as sb
from rftgym.envs.code.worker import FrameReader, ValueDecodeError, decode_value, encode_value, pack_frame

_GRACE = 3.0  # seconds the parent waits beyond a job's deadline before killing the server


class SandboxError(RuntimeError):
    """The sandbox server failed (crashed, hung or broke the protocol); it has been replaced."""


class SandboxTimeout(SandboxError):
    """The sandbox server did not answer within the job's deadline plus a grace period."""


@dataclass
class Job:
    """Run ``program``, then call ``entry_point(*args)`` once per entry of ``calls``."""

    program: str
    entry_point: str
    calls: Sequence[tuple] = ()
    timeout: float | None = None


@dataclass
class CallOutcome:
    """What one call produced: a decoded builtin value, or an error text. Never a verdict."""

    ok: bool
    value: Any = None
    error: str = ""


@dataclass
class JobResult:
    calls: list[CallOutcome | None]  # None: no answer for that call
    loaded: bool = False
    load_error: str = ""
    timed_out: bool = False
    output: str = ""  # head of the program's stdout/stderr
    status: dict = field(default_factory=dict)  # what the server reported (informational)
    error: str = ""  # set when the server itself failed


# ---------------------------------------------------------------------------------------------
# Reading the child's result stream
# ---------------------------------------------------------------------------------------------

class _ResultStream:
    """Parses the child's frames: ``L`` (program loaded) and ``V`` (one call's value or error)."""

    def __init__(self, n_calls: int | None, max_bytes: int):
        self.reader = FrameReader(max_bytes)
        self.calls: dict[int, CallOutcome] = {}
        self.n_calls = n_calls
        self.loaded = False
        self.load_error = ""
        self.seen_load = False
        self.broken = False

    def feed(self, data: bytes):
        if self.broken:
            return
        self.reader.feed(data)
        while True:
            try:
                fr = self.reader.next()
            except ValueError:
                self.broken = True
                return
            if fr is None:
                return
            self._frame(*fr)

    def _frame(self, kind: bytes, payload: bytes):
        try:
            msg = json.loads(payload)
        except (ValueError, RecursionError):
            return
        if type(msg) is not dict:
            return
        if kind == b"L" and not self.seen_load:
            self.seen_load = True
            self.loaded = msg.get("ok") is True
            err = msg.get("error")
            self.load_error = err[:300] if isinstance(err, str) else ""
        elif kind == b"V":
            i = msg.get("i")
            if type(i) is not int or i < 0 or i in self.calls:
                return  # keep the first answer per call only
            if self.n_calls is not None and i >= self.n_calls:
                return
            if "v" in msg:
                try:
                    self.calls[i] = CallOutcome(True, decode_value(msg["v"]))
                except (ValueDecodeError, RecursionError, MemoryError, OverflowError) as exc:
                    self.calls[i] = CallOutcome(False, error=f"undecodable value: {str(exc)[:200]}")
            else:
                err = msg.get("e")
                self.calls[i] = CallOutcome(False, error=err[:300] if isinstance(err, str) else "error")


# ---------------------------------------------------------------------------------------------
# One sandbox server
# ---------------------------------------------------------------------------------------------

class _Server:
    def __init__(self, plan: sb.LaunchPlan, config: sb.SandboxConfig):
        self.config = config
        self.uid = plan.init.get("uid")
        self.proc = subprocess.Popen(
            plan.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={}, cwd=plan.cwd, start_new_session=True, close_fds=True)
        self.out = self.proc.stdout.fileno()
        self.inp = self.proc.stdin.fileno()
        os.set_blocking(self.out, False)
        os.set_blocking(self.inp, False)
        self.reader = FrameReader(config.max_result_bytes + (1 << 20))
        self.alive = True
        self.jobs = 0
        try:
            self._write(pack_frame(b"I", json.dumps(plan.init).encode()), time.monotonic() + config.spawn_timeout)
            kind, payload = self._read_frame(time.monotonic() + config.spawn_timeout)
            if kind != b"R":
                raise SandboxError(f"sandbox sent {kind!r} instead of its ready message")
            self.ready = json.loads(payload)
        except Exception as exc:  # noqa: BLE001 - reported with the sandbox's own error output
            detail = self._stderr_tail()
            self.kill()
            raise SandboxError(f"sandbox failed to start: {exc}" + (f"; stderr: {detail}" if detail else "")) from None
        except BaseException:
            self.kill()
            raise

    # -- low-level I/O with deadlines ---------------------------------------------------------
    def _write(self, data: bytes, deadline: float):
        view = memoryview(data)
        while view:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SandboxTimeout("timed out writing to the sandbox")
            _, w, _ = select.select([], [self.inp], [], remaining)
            if w:
                try:
                    view = view[os.write(self.inp, view):]
                except BlockingIOError:
                    pass
                except (BrokenPipeError, OSError) as exc:
                    raise SandboxError(f"sandbox closed its input ({exc})") from None

    def _read_frame(self, deadline: float):
        while True:
            try:
                fr = self.reader.next()
            except ValueError as exc:
                raise SandboxError(f"protocol error: {exc}") from None
            if fr is not None:
                return fr
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SandboxTimeout("sandbox did not answer in time")
            r, _, _ = select.select([self.out], [], [], remaining)
            if r:
                try:
                    data = os.read(self.out, 1 << 20)
                except BlockingIOError:
                    continue
                if not data:
                    raise SandboxError("sandbox exited")
                self.reader.feed(data)

    def _stderr_tail(self) -> str:
        try:
            os.set_blocking(self.proc.stderr.fileno(), False)
            data = self.proc.stderr.read(4096) or b""
        except (OSError, ValueError, TypeError):
            data = b""
        return data.decode("utf-8", "replace").strip()[-1000:]

    # -- jobs ---------------------------------------------------------------------------------
    def _collect(self, stream: _ResultStream, deadline: float, until_call: int | None = None) -> dict | None:
        """Read frames until the end-of-job status (returned) or, if ``until_call`` is given, until
        that call has an answer (returns None)."""
        while True:
            if until_call is not None and until_call in stream.calls:
                return None
            kind, payload = self._read_frame(deadline)
            if kind == b"D":
                stream.feed(payload)
            elif kind == b"E":
                try:
                    status = json.loads(payload)
                except ValueError:
                    status = None
                if type(status) is not dict:
                    raise SandboxError("malformed end-of-job status")
                return status
            else:
                raise SandboxError(f"unexpected frame {kind!r} from the sandbox")

    def start_job(self, job: Job, timeout: float, interactive: bool):
        msg = {"program": job.program, "entry_point": job.entry_point, "timeout": timeout,
               "interactive": interactive,
               "calls": [] if interactive else [encode_value(tuple(a)) for a in job.calls]}
        self.jobs += 1
        self._write(pack_frame(b"J", json.dumps(msg, separators=(",", ":")).encode()),
                    time.monotonic() + timeout + _GRACE)

    def finish(self, stream: _ResultStream, status: dict, n_calls: int) -> JobResult:
        if status.get("clean") is False:
            self.kill()  # leftovers could not be reaped; start afresh next time
        out = status.get("output")
        return JobResult(
            calls=[stream.calls.get(i) for i in range(n_calls)],
            loaded=stream.loaded, load_error=stream.load_error,
            timed_out=status.get("timeout") is True,
            output=out[: self.config.output_bytes] if isinstance(out, str) else "",
            status={k: v for k, v in status.items() if k != "output"})

    def shutdown(self, grace: float = 1.0):
        """Close the server's input so it exits by itself (and is reaped), then make sure."""
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=grace)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()

    def kill(self):
        self.alive = False
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            self.proc.kill()
        except OSError:
            pass
        if self.uid is not None:
            _kill_uid(self.uid)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass


def _kill_uid(uid: int):
    """Kill every process running as ``uid`` (the per-sandbox uid; used when a server is retired)."""
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            with open(f"/proc/{e}/status") as f:
                for line in f:
                    if line.startswith("Uid:"):
                        if int(line.split()[1]) == uid:
                            os.kill(int(e), signal.SIGKILL)
                        break
        except (OSError, ValueError):
            pass


# ---------------------------------------------------------------------------------------------
# Interactive sessions (for HumanEval-style check functions that run in the parent)
# ---------------------------------------------------------------------------------------------

class CandidateCallError(Exception):
    """The sandboxed candidate raised, returned something undecodable, or did not answer."""


class CandidateSession:
    """A callable proxy for the sandboxed candidate function; each call is one round trip.

    The trusted check code runs in the parent and calls this proxy; only arguments enter the
    sandbox and only builtin values come back."""

    def __init__(self, pool: "SandboxPool", job: Job, timeout: float):
        self._pool = pool
        self._job = job
        self._timeout = timeout
        self._server = None
        self._stream = None
        self._status = None
        self._n = 0
        self.calls = 0

    def __enter__(self):
        self._server = self._pool._acquire()
        try:
            self._deadline = time.monotonic() + self._timeout
            self._stream = _ResultStream(None, self._pool.config.max_result_bytes)
            self._server.start_job(self._job, self._timeout, interactive=True)
        except BaseException:
            self._fail()
            raise
        return self

    def __call__(self, *args):
        if self._status is not None:
            raise CandidateCallError(self._ended_reason())
        i = self._n
        self._n += 1
        self.calls += 1
        try:
            payload = json.dumps({"i": i, "a": encode_value(tuple(args))}, separators=(",", ":")).encode()
            self._server._write(pack_frame(b"C", payload), self._deadline + _GRACE)
            self._status = self._server._collect(self._stream, self._deadline + _GRACE, until_call=i)
        except SandboxError as exc:
            self._fail()
            raise CandidateCallError(f"sandbox failure: {exc}") from None
        if self._status is not None and i not in self._stream.calls:
            raise CandidateCallError(self._ended_reason())
        out = self._stream.calls[i]
        if not out.ok:
            raise CandidateCallError(out.error)
        return out.value

    def _ended_reason(self):
        if self._status and self._status.get("timeout"):
            return "candidate timed out"
        if self._stream is not None and self._stream.seen_load and not self._stream.loaded:
            return f"program failed to load: {self._stream.load_error}"
        return "candidate exited before answering"

    def _fail(self):
        if self._server is not None:
            self._server.kill()
            self._pool._release(self._server)
            self._server = None

    def __exit__(self, *exc):
        if self._server is None:
            return False
        try:
            self._server._write(pack_frame(b"X"), self._deadline + _GRACE)
            if self._status is None:
                self._status = self._server._collect(self._stream, self._deadline + _GRACE)
        except SandboxError:
            self._fail()
            return False
        self.result = self._server.finish(self._stream, self._status, 0)
        self._pool._release(self._server)
        self._server = None
        return False

    @property
    def timed_out(self) -> bool:
        return bool(self._status and self._status.get("timeout"))

    @property
    def loaded(self) -> bool:
        return bool(self._stream and self._stream.loaded)

    @property
    def load_error(self) -> str:
        return self._stream.load_error if self._stream else ""


# ---------------------------------------------------------------------------------------------
# The pool
# ---------------------------------------------------------------------------------------------

def default_pool_size() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class _Spawner:
    """Starts servers from one long-lived thread.

    bubblewrap's ``--die-with-parent`` (PR_SET_PDEATHSIG) fires when the *thread* that started it
    exits, so servers must not be started from short-lived worker threads."""

    def __init__(self):
        self._q: queue.Queue = queue.Queue()
        self._t = threading.Thread(target=self._loop, name="rftgym-sandbox-spawner", daemon=True)
        self._t.start()

    def _loop(self):
        while True:
            fn, fut = self._q.get()
            if fn is None:
                return
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(fn())
                except BaseException as exc:  # noqa: BLE001 - handed to the caller
                    fut.set_exception(exc)

    def submit(self, fn):
        fut: concurrent.futures.Future = concurrent.futures.Future()
        self._q.put((fn, fut))
        return fut.result()

    def stop(self):
        self._q.put((None, None))


class SandboxPool:
    """``size`` warm sandbox servers (default: one per usable core), started lazily.

    The mode is resolved on construction (probed once per process and config, see
    :func:`resolve_mode`) and announced in one log line."""

    def __init__(self, config: sb.SandboxConfig | dict | None = None, size: int | None = None):
        self.config = sb.SandboxConfig.coerce(config)
        self.size = size or default_pool_size()
        self.mode, self.missing = resolve_mode(self.config)
        self._rlimit_dir = None
        if self.mode == "rlimit":
            self._rlimit_dir = tempfile.mkdtemp(prefix="rftgym-sandbox-")
            os.chmod(self._rlimit_dir, 0o711)
        self._spawner = _Spawner()
        self._idle: queue.Queue = queue.Queue()
        for _ in range(self.size):
            self._idle.put(None)  # a slot without a live server yet
        self._lock = threading.Lock()
        self._servers: list[_Server] = []
        self._closed = False
        self.spawned = 0

    # -- servers ------------------------------------------------------------------------------
    def _spawn(self) -> _Server:
        plan = sb.plan_launch(self.mode, self.config, self._rlimit_dir)
        server = self._spawner.submit(lambda: _Server(plan, self.config))
        with self._lock:
            self._servers.append(server)
            self.spawned += 1
        return server

    def _acquire(self) -> _Server:
        if self._closed:
            raise SandboxError("the sandbox pool is closed")
        server = self._idle.get()
        if server is None or not server.alive or server.proc.poll() is not None:
            if server is not None:
                server.kill()
                self._forget(server)
            try:
                server = self._spawn()
            except BaseException:
                self._idle.put(None)
                raise
        return server

    def _release(self, server: _Server):
        if not server.alive:
            self._forget(server)
            server = None
        self._idle.put(server)

    def _forget(self, server: _Server):
        with self._lock:
            if server in self._servers:
                self._servers.remove(server)

    # -- running ------------------------------------------------------------------------------
    def run(self, job: Job) -> JobResult:
        """Run one job on an idle server (blocks until one is free). Never raises for anything
        the candidate does; a failed server is reported in ``JobResult.error`` and replaced."""
        timeout = float(job.timeout or self.config.timeout)
        server = self._acquire()
        stream = _ResultStream(len(job.calls), self.config.max_result_bytes)
        try:
            server.start_job(job, timeout, interactive=False)
            status = server._collect(stream, time.monotonic() + timeout + _GRACE)
            result = server.finish(stream, status, len(job.calls))
        except SandboxError as exc:
            server.kill()
            result = JobResult(calls=[stream.calls.get(i) for i in range(len(job.calls))],
                               loaded=stream.loaded, load_error=stream.load_error,
                               timed_out=isinstance(exc, SandboxTimeout), error=str(exc))
        finally:
            self._release(server)
        return result

    def run_many(self, jobs: Sequence[Job]) -> list[JobResult]:
        """Run jobs concurrently on all servers; results in input order."""
        if not jobs:
            return []
        with concurrent.futures.ThreadPoolExecutor(min(self.size, len(jobs))) as ex:
            return list(ex.map(self.run, jobs))

    def session(self, program: str, entry_point: str, timeout: float | None = None) -> CandidateSession:
        """An interactive session: ``with pool.session(prog, "f") as f: f(1, 2)``."""
        return CandidateSession(self, Job(program, entry_point), float(timeout or self.config.timeout))

    def warm_up(self):
        """Start every server now instead of on first use."""
        held = [self._acquire() for _ in range(self.size)]
        for s in held:
            self._release(s)

    def process_ids(self) -> list[int]:
        """Host pids of every process of every live sandbox (for checks that nothing leaked)."""
        with self._lock:
            roots = [s.proc.pid for s in self._servers if s.alive]
        return _descendants(roots)

    def server_pids(self) -> list[int]:
        """Host pids of the server processes' launchers (bwrap / unshare / python)."""
        with self._lock:
            return [s.proc.pid for s in self._servers if s.alive]

    def close(self):
        self._closed = True
        with self._lock:
            servers = list(self._servers)
            self._servers.clear()
        for s in servers:
            s.shutdown()
        self._spawner.stop()
        if self._rlimit_dir:
            _remove_tree(self._rlimit_dir)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _remove_tree(path: str):
    """Delete a directory tree that sandboxed jobs wrote: possibly locked, possibly very deep."""
    try:
        shutil.rmtree(path)
        return
    except (OSError, RecursionError):
        pass
    for argv in (["chmod", "-R", "u+rwX", path], ["rm", "-rf", "--one-file-system", path]):
        try:
            subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired):
            pass


def _descendants(roots: list[int]) -> list[int]:
    children: dict[int, list[int]] = {}
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            with open(f"/proc/{e}/stat", "rb") as f:
                stat = f.read()
            ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        except (OSError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(e))
    out, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        if pid in out:
            continue
        out.append(pid)
        todo.extend(children.get(pid, []))
    return sorted(out)


# ---------------------------------------------------------------------------------------------
# Mode resolution (probed once per process and config) and the shared per-process pools
# ---------------------------------------------------------------------------------------------

_resolved: dict = {}
_resolve_lock = threading.Lock()


def _probe(mode: str, config: sb.SandboxConfig) -> str | None:
    """Start one server in ``mode`` and run a tiny job; None if it works, else why not."""
    if mode == "bwrap" and not shutil.which(config.bwrap):
        return f"{config.bwrap} not found"
    if mode == "unshare" and not shutil.which(config.unshare):
        return f"{config.unshare} not found"
    tmp = tempfile.mkdtemp(prefix="rftgym-probe-") if mode == "rlimit" else None
    if tmp:
        os.chmod(tmp, 0o711)
    server = None
    try:
        plan = sb.plan_launch(mode, config, tmp)
        server = _probe_spawner.submit(lambda: _Server(plan, config))
        server.start_job(Job("def f(x):\n    return x + 1\n", "f", [(41,)]), 10.0, interactive=False)
        stream = _ResultStream(1, 1 << 16)
        status = server._collect(stream, time.monotonic() + 10.0 + _GRACE)
        res = server.finish(stream, status, 1)
        if not (res.calls[0] and res.calls[0].ok and res.calls[0].value == 42):
            return f"probe job failed: {res.load_error or res.calls[0] or status}"
        return None
    except (SandboxError, OSError) as exc:
        return str(exc)[:500]
    finally:
        if server is not None:
            server.kill()
        if tmp:
            _remove_tree(tmp)


class _LazySpawner:
    def __init__(self):
        self._s = None
        self._lock = threading.Lock()

    def submit(self, fn):
        with self._lock:
            if self._s is None:
                self._s = _Spawner()
        return self._s.submit(fn)


_probe_spawner = _LazySpawner()


def resolve_mode(config: sb.SandboxConfig) -> tuple[str, list[str]]:
    """Pick the sandbox mode for ``config`` (probing once per process) and log it once.

    Returns ``(mode, missing_protections)``. Raises SandboxUnavailableError when nothing works,
    when a requested mode does not work, or when ``require_full_sandbox`` is set and the best
    working mode lacks protections."""
    key = (config.mode, config.require_full_sandbox, config.bwrap, config.unshare,
           config.python)
    with _resolve_lock:
        if key in _resolved:
            return _resolved[key]
        candidates = sb.MODES if config.mode == "auto" else (config.mode,)
        failures = []
        for mode in candidates:
            why = _probe(mode, config)
            if why is None:
                missing = sb.missing_protections(mode)
                if config.require_full_sandbox and missing:
                    raise sb.SandboxUnavailableError(
                        f"require_full_sandbox=True but the best working sandbox mode '{mode}' lacks: "
                        f"{', '.join(missing)}" + (f" (failed: {'; '.join(failures)})" if failures else ""))
                line = sb.describe(mode, missing)
                if failures:
                    line += f" (unavailable: {'; '.join(failures)})"
                (sb.logger.warning if missing else sb.logger.info)(line)
                _resolved[key] = (mode, missing)
                return mode, missing
            failures.append(f"{mode}: {why}")
        raise sb.SandboxUnavailableError("no sandbox mode works on this machine: " + "; ".join(failures))


_shared: dict = {}
_shared_lock = threading.Lock()


@atexit.register
def _close_shared_pools():
    for key, pool in list(_shared.items()):
        if key[0] == os.getpid():
            pool.close()


def get_shared_pool(config: sb.SandboxConfig | dict | None = None) -> SandboxPool:
    """The process-wide pool for ``config`` (created on first use; a forked child gets its own)."""
    config = sb.SandboxConfig.coerce(config)
    key = (os.getpid(), config)
    with _shared_lock:
        pool = _shared.get(key)
        if pool is None or pool._closed:
            pool = SandboxPool(config)
            _shared[key] = pool
        return pool
