"""The code sandbox: value codec, framing, seccomp, the warm pool, modes, probing and fallbacks."""

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from rftgym.envs.code import sandbox as sb
from rftgym.envs.code.pool import CandidateCallError, Job, SandboxPool, _ResultStream, resolve_mode
from rftgym.envs.code.worker import FrameReader, Unsupported, ValueDecodeError, decode_value, encode_value, pack_frame

ROOT = sb.is_real_root()


# ---------------------------------------------------------------------------------------------
# codec and framing (pure functions)
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [
    None, True, False, 0, -7, 2 ** 200, -(3 ** 90), 1.5, -0.0, float("inf"), 1e-310, "", "héllo\n\x00",
    b"\x00\xff", [1, [2, [3]]], (1, "a", None), (), {"a": 1, 2: [3], (1, 2): None}, {1, 2, 3},
    frozenset({"x"}), complex(1, -2), [{"k": (1.25, frozenset({(1, 2)}))}],
])
def test_codec_round_trips_builtin_values_exactly(value):
    back = decode_value(json.loads(json.dumps(encode_value(value))))
    assert back == value and type(back) is type(value)
    if isinstance(value, float):
        assert repr(back) == repr(value)  # -0.0 and subnormals survive


def test_codec_keeps_types_apart():
    assert decode_value(encode_value((1, 2))) != [1, 2]
    assert type(decode_value(encode_value(True))) is bool
    assert decode_value(encode_value(10 ** 5000)) == 10 ** 5000  # beyond int's 4300-digit str limit


def test_codec_marks_unsupported_types_which_equal_nothing():
    class AlwaysEqual:
        def __eq__(self, other):
            return True

    node = encode_value(AlwaysEqual())
    assert node == ["?", "AlwaysEqual"]
    value = decode_value(node)
    assert isinstance(value, Unsupported)
    assert value != 1 and not (value == value) and not (1 == value)
    assert [value] != [decode_value(node)] and {"k": value} != {"k": Unsupported("AlwaysEqual")}


@pytest.mark.parametrize("node, message", [
    (["zz", 1], "unknown tag"),
    ("s", r"must be a \[tag, payload\] list"),
    (["i", "12g"], "malformed integer"),
    (["i", "f" * 30000], "malformed integer"),
    (["f", "x"], "malformed float"),
    (["l", "abc"], "container payload must be a list"),
    (["S", [["l", []]]], "unhashable"),
    (["d", [[["l", []], ["n"]]]], "unhashable"),
    (["d", [["n"]]], "dict items must be"),
    (["b", 1], "unknown tag"),
])
def test_decode_rejects_malformed_values_with_a_reason(node, message):
    with pytest.raises(ValueDecodeError, match=message):
        decode_value(node)


def test_decode_rejects_deep_nesting():
    node = ["n"]
    for _ in range(200):
        node = ["l", [node]]
    with pytest.raises(ValueDecodeError, match="nested too deeply"):
        decode_value(node)
    with pytest.raises(ValueError, match="nested too deeply"):
        deep = []
        for _ in range(200):
            deep = [deep]
        encode_value(deep)


def test_frame_reader_splits_frames_and_refuses_oversized_ones():
    r = FrameReader(100)
    data = pack_frame(b"A", b"xyz") + pack_frame(b"B")
    r.feed(data[:3])
    assert r.next() is None
    r.feed(data[3:])
    assert r.next() == (b"A", b"xyz") and r.next() == (b"B", b"") and r.next() is None
    r.feed(pack_frame(b"C", b"x" * 200))
    with pytest.raises(ValueError, match="exceeds the limit of 100"):
        r.next()


def test_seccomp_filter_shape():
    prog = sb.build_seccomp_filter("x86_64")
    assert len(prog) % 8 == 0 and 40 < len(prog) // 8 < 255
    assert sb.build_seccomp_filter("aarch64") != prog
    assert sb.build_seccomp_filter("riscv64") is None
    assert "seccomp filter" in sb.missing_protections("bwrap", root=True, machine="riscv64")


def test_sandbox_config_validation_messages():
    with pytest.raises(ValueError, match="mode must be 'auto', 'bwrap', 'unshare' or 'rlimit'"):
        sb.SandboxConfig(mode="docker")
    with pytest.raises(ValueError, match="memory_mb must be a positive integer"):
        sb.SandboxConfig(memory_mb=0)
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        sb.SandboxConfig(timeout=-1)
    with pytest.raises(ValueError, match=r"unknown sandbox option\(s\): \['memory'\]"):
        sb.SandboxConfig.coerce({"memory": 5})
    assert sb.SandboxConfig.coerce({"timeout": 2}).timeout == 2


# ---------------------------------------------------------------------------------------------
# the pool, default (full) sandbox
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pool():
    p = SandboxPool(sb.SandboxConfig(timeout=3.0, require_full_sandbox=True), size=2)
    yield p
    p.close()


def test_full_sandbox_is_available_and_chosen(pool):
    assert pool.mode in ("bwrap", "unshare") and pool.missing == []


def test_values_come_back_typed(pool):
    prog = "def f(x):\n    return [x, (x,), {x: {x}}, None, 1.5, b'b', x == 1]\n"
    res = pool.run(Job(prog, "f", [(1,), ("a",)]))
    assert res.loaded and not res.timed_out and res.error == ""
    assert res.calls[0].value == [1, (1,), {1: {1}}, None, 1.5, b"b", True]
    assert res.calls[1].value == ["a", ("a",), {"a": {"a"}}, None, 1.5, b"b", False]


def test_errors_are_reported_per_call_and_at_load(pool):
    res = pool.run(Job("def f(x):\n    return 10 // x\n", "f", [(2,), (0,), (5,)]))
    assert [c.ok for c in res.calls] == [True, False, True]
    assert res.calls[1].error.startswith("ZeroDivisionError")
    res = pool.run(Job("raise ValueError('boom')\n", "f", [(1,)]))
    assert not res.loaded and res.load_error == "ValueError: boom" and res.calls == [None]
    res = pool.run(Job("def g():\n    pass\n", "f", [()]))
    assert res.load_error == "no function named 'f'"
    res = pool.run(Job("def f(:\n", "f", [()]))
    assert res.load_error.startswith("SyntaxError")


def test_inside_limits_environment_and_identity(pool):
    prog = textwrap.dedent("""
        import os, resource
        def f():
            lim = {n: resource.getrlimit(getattr(resource, n))[0] for n in
                   ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_NPROC", "RLIMIT_FSIZE", "RLIMIT_NOFILE")}
            status = {l.split(':')[0]: l.split(':')[1].strip() for l in open('/proc/self/status')}
            return lim, dict(os.environ), os.getcwd(), os.getuid(), status['NoNewPrivs'], status['Seccomp'], status['CapEff']
    """)
    res = pool.run(Job(prog, "f", [()]))
    lim, env, cwd, uid, nnp, seccomp, capeff = res.calls[0].value
    cfg = pool.config
    assert lim == {"RLIMIT_AS": cfg.memory_mb << 20, "RLIMIT_CPU": int(cfg.timeout) + 2,
                   "RLIMIT_NPROC": cfg.max_processes + 2, "RLIMIT_FSIZE": cfg.file_size_mb << 20,
                   "RLIMIT_NOFILE": cfg.max_open_files}
    assert set(env) <= {"PWD", "LC_CTYPE"}  # nothing of the trainer's environment
    assert cwd == "/tmp" and uid != 0
    assert nnp == "1" and seccomp == "2" and int(capeff, 16) == 0


def test_seccomp_blocks_network_and_ptrace_but_threads_work(pool):
    prog = textwrap.dedent("""
        import ctypes, socket, threading
        def f():
            out = {}
            try:
                socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                out['inet'] = 'allowed'
            except OSError as e:
                out['inet'] = e.errno
            socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close()
            libc = ctypes.CDLL(None, use_errno=True)
            out['ptrace'] = (libc.ptrace(16, 1, 0, 0), ctypes.get_errno())
            out['unshare'] = (libc.unshare(0x10000000), ctypes.get_errno())
            box = []
            t = threading.Thread(target=lambda: box.append(sum(range(10))))
            t.start(); t.join()
            out['thread'] = box
            return out
    """)
    out = pool.run(Job(prog, "f", [()])).calls[0].value
    assert out == {"inet": 1, "ptrace": (-1, 1), "unshare": (-1, 1), "thread": [45]}


def test_timeout_is_enforced_and_earlier_results_count(pool):
    prog = "import time\ndef f(x):\n    if x == 2:\n        while True:\n            pass\n    return x\n"
    t = time.monotonic()
    res = pool.run(Job(prog, "f", [(1,), (2,), (3,)], timeout=1.0))
    # the server's own deadline stopped the job: it answered with its status, the parent did not
    # have to give up on it; the wall-clock bound only rules out a hang on a loaded machine
    assert res.error == "" and res.status["timeout"] is True and res.status["elapsed"] >= 1.0
    assert time.monotonic() - t < 1.0 + 10.0
    assert res.timed_out and res.calls[0].value == 1 and res.calls[1] is None and res.calls[2] is None


def test_work_dir_is_wiped_between_jobs(pool):
    write = "import os\ndef f():\n    open('left.txt', 'w').write('x')\n    os.makedirs('d/e', exist_ok=True)\n    return sorted(os.listdir('.'))\n"
    look = "import os\ndef f():\n    return sorted(os.listdir('/tmp'))\n"
    with SandboxPool(pool.config, size=1) as one:
        assert one.run(Job(write, "f", [()])).calls[0].value == ["d", "left.txt"]
        assert one.run(Job(look, "f", [()])).calls[0].value == []


def test_output_head_is_captured_and_capped(pool):
    res = pool.run(Job("print('hello')\ndef f():\n    print('x' * 100000)\n    return 1\n", "f", [()]))
    assert res.output.startswith("hello\nxxx") and len(res.output) == pool.config.output_bytes


def test_pool_is_thread_safe_and_answers_go_to_the_right_caller(pool):
    results = {}

    def worker(k):
        prog = f"def f(x):\n    return ({k}, x * x)\n"
        results[k] = pool.run(Job(prog, "f", [(i,) for i in range(5)]))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, res in results.items():
        assert [c.value for c in res.calls] == [(k, i * i) for i in range(5)]


def test_run_many_keeps_order(pool):
    jobs = [Job(f"def f():\n    return {k}\n", "f", [()]) for k in range(10)]
    assert [r.calls[0].value for r in pool.run_many(jobs)] == list(range(10))


def test_a_dead_server_is_replaced(pool):
    with SandboxPool(pool.config, size=1) as one:
        one.warm_up()
        assert one.run(Job("def f():\n    return 1\n", "f", [()])).calls[0].value == 1
        (launcher,) = one.server_pids()
        os.killpg(launcher, signal.SIGKILL)
        os.waitid(os.P_PID, launcher, os.WEXITED | os.WNOWAIT)  # dead (left for the pool to reap)
        assert one.run(Job("def f():\n    return 2\n", "f", [()])).calls[0].value == 2
        assert one.spawned == 2


def test_interactive_session_forwards_calls_and_errors(pool):
    prog = "def f(x):\n    if x == -1:\n        raise ValueError('negative')\n    return x * 2\n"
    with pool.session(prog, "f") as f:
        assert f(3) == 6 and f("ab") == "abab"
        with pytest.raises(CandidateCallError, match="ValueError: negative"):
            f(-1)
        assert f(5) == 10
    assert f.calls == 4 and f.loaded
    with pool.session("def f():\n    while True:\n        pass\n", "f", timeout=1.0) as g:
        with pytest.raises(CandidateCallError, match="timed out"):
            g()
    assert g.timed_out
    with pool.session("import sys\nsys.exit(0)\n", "f") as h:
        with pytest.raises(CandidateCallError, match="failed to load: SystemExit"):
            h()
    assert pool.run(Job("def f():\n    return 'ok'\n", "f", [()])).calls[0].value == "ok"


def test_frames_that_reach_the_server_in_one_read_are_all_served(pool):
    """The parent's frames may arrive in one read: an ended session's end marker together with the
    next job, or a job together with its calls. Dropping the job would leave the server waiting."""
    def job_frame(program, interactive, calls=()):
        msg = {"program": program, "entry_point": "f", "timeout": 3.0, "interactive": interactive,
               "calls": [encode_value(c) for c in calls]}
        return pack_frame(b"J", json.dumps(msg).encode())

    def call_frame(i, args):
        return pack_frame(b"C", json.dumps({"i": i, "a": encode_value(args)}).encode())

    with SandboxPool(pool.config, size=1) as one:
        server = one._acquire()
        try:
            deadline = time.monotonic() + 30.0  # generous: only a lost frame makes it expire
            # a session whose program exits at import: the job ends before the parent's end marker
            server.start_job(Job("import sys\nsys.exit(0)\n", "f"), 3.0, interactive=True)
            stream = _ResultStream(None, 1 << 16)
            assert server._collect(stream, deadline)["exit"] == 0
            assert stream.seen_load and stream.load_error == "SystemExit: 0"
            server._write(pack_frame(b"X") + job_frame("def f(x):\n    return x + 1\n", False, [(41,)]), deadline)
            stream = _ResultStream(1, 1 << 16)
            assert server._collect(stream, deadline)["timeout"] is False
            assert stream.calls[0].value == 42
            # an interactive job with its calls and end marker in one write
            frames = (job_frame("def f(x):\n    return x * 2\n", True) + call_frame(0, (3,))
                      + call_frame(1, ("ab",)) + pack_frame(b"X"))
            server._write(frames, deadline)
            stream = _ResultStream(None, 1 << 16)
            assert server._collect(stream, deadline)["timeout"] is False
            assert [stream.calls[i].value for i in (0, 1)] == [6, "abab"]
            server._write(job_frame("def f():\n    return 'ok'\n", False, [()]), deadline)
            stream = _ResultStream(1, 1 << 16)
            server._collect(stream, deadline)
            assert stream.calls[0].value == "ok"
        finally:
            one._release(server)


# ---------------------------------------------------------------------------------------------
# modes, probing and fallbacks
# ---------------------------------------------------------------------------------------------

def _basic_checks(p):
    res = p.run(Job("import os\ndef f(a, b):\n    return (a + b, os.getuid())\n", "f", [(1, 2), ("x", "y")]))
    assert [c.value[0] for c in res.calls] == [3, "xy"]
    return res.calls[0].value[1]


@pytest.mark.parametrize("mode", ["bwrap", "unshare", "rlimit"])
def test_every_mode_runs_jobs(mode):
    if mode == "rlimit" and not ROOT:
        pytest.skip("the rlimit mode gives a separate uid only to a root trainer")
    with SandboxPool(sb.SandboxConfig(mode=mode), size=1) as p:
        assert p.mode == mode
        uid = _basic_checks(p)
        if ROOT:
            assert uid >= 1_800_000_000  # the per-sandbox unprivileged uid


def test_unshare_mode_has_a_private_minimal_root():
    with SandboxPool(sb.SandboxConfig(mode="unshare"), size=1) as p:
        prog = "import os\ndef f():\n    return sorted(os.listdir('/')), os.getpid(), os.access('/usr', os.W_OK)\n"
        top, pid, usr_writable = p.run(Job(prog, "f", [()])).calls[0].value
        assert set(top) <= {"usr", "lib", "lib64", "lib32", "libx32", "bin", "sbin", "dev", "proc", "tmp", "root", "opt", "home"}
        assert "work" not in top and "etc" not in top and not usr_writable and pid < 50


def _fake_tools(tmp_path):
    """bwrap and unshare stand-ins that fail the way the real ones do without user namespaces."""
    bwrap = tmp_path / "bwrap"
    bwrap.write_text("#!/bin/sh\necho 'bwrap: No permissions to creating new namespace, likely because the kernel "
                     "does not allow non-privileged user namespaces.' >&2\nexit 1\n")
    unshare = tmp_path / "unshare"
    unshare.write_text("#!/bin/sh\necho 'unshare: unshare failed: Operation not permitted' >&2\nexit 1\n")
    for f in (bwrap, unshare):
        f.chmod(0o755)
    return str(bwrap), str(unshare)


def test_fallback_to_rlimit_is_announced_naming_missing_protections(tmp_path, caplog):
    bwrap, unshare = _fake_tools(tmp_path)
    cfg = sb.SandboxConfig(bwrap=bwrap, unshare=unshare, timeout=2.0)
    with caplog.at_level(logging.INFO, logger="rftgym.envs.code.sandbox"):
        mode, missing = resolve_mode(cfg)
    assert mode == "rlimit"
    lines = [r for r in caplog.records if r.name == "rftgym.envs.code.sandbox"]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING
    text = lines[0].getMessage()
    assert "mode=rlimit" in text and "missing protections: pid namespace, ipc/uts namespaces, private file system" in text
    assert "No permissions to creating new namespace" in text and "unshare failed" in text
    if not ROOT:
        assert "unprivileged uid" in missing
        return
    with SandboxPool(cfg, size=1) as p:
        assert p.mode == "rlimit"
        _basic_checks(p)
        # what the rlimit mode still protects: network (seccomp), other users' files, process count
        prog = textwrap.dedent("""
            import ctypes, os
            def f(path):
                libc = ctypes.CDLL(None, use_errno=True)
                inet = libc.socket(2, 1, 0)
                try:
                    secret = open(path).read()
                except OSError as e:
                    secret = type(e).__name__
                kids = 0
                for _ in range(50):
                    try:
                        if os.fork() == 0:
                            import time
                            time.sleep(5)
                            os._exit(0)
                        kids += 1
                    except OSError:
                        break
                return inet, ctypes.get_errno(), secret, kids
        """)
        secret = tmp_path / "secret.txt"
        secret.write_text("s3cret")
        secret.chmod(0o600)
        inet, errno, got, kids = p.run(Job(prog, "f", [(str(secret),)])).calls[0].value
        assert (inet, errno) == (-1, 1) and got == "PermissionError" and kids == p.config.max_processes


def test_require_full_sandbox_refuses_the_fallback(tmp_path):
    bwrap, unshare = _fake_tools(tmp_path)
    cfg = sb.SandboxConfig(bwrap=bwrap, unshare=unshare, require_full_sandbox=True)
    with pytest.raises(sb.SandboxUnavailableError,
                       match=r"require_full_sandbox=True but the best working sandbox mode 'rlimit' lacks: pid namespace"):
        SandboxPool(cfg)
    with pytest.raises(sb.SandboxUnavailableError, match="no sandbox mode works on this machine: bwrap: .*No permissions"):
        SandboxPool(sb.SandboxConfig(mode="bwrap", bwrap=bwrap))


_NO_NAMESPACES = textwrap.dedent("""
    import json, logging, sys
    from rftgym.envs.code import sandbox as sb, worker
    from rftgym.envs.code.pool import Job, SandboxPool
    # The kernel now refuses every new namespace to this process and its children (as under a
    # container runtime's default seccomp profile): the real bwrap and unshare must fail.
    worker.install_seccomp(sb.build_seccomp_filter())
    records = []
    logging.getLogger("rftgym.envs.code.sandbox").addHandler(logging.Handler())
    logging.getLogger("rftgym.envs.code.sandbox").handlers[-1].emit = lambda r: records.append(r.getMessage())
    try:
        SandboxPool(sb.SandboxConfig(require_full_sandbox=True))
        strict = "accepted"
    except sb.SandboxUnavailableError as exc:
        strict = str(exc)
    with SandboxPool(sb.SandboxConfig(), size=1) as p:
        res = p.run(Job("def f(a):\\n    return a * 2\\n", "f", [(21,), ("ab",)]))
        print(json.dumps({"mode": p.mode, "log": records, "strict": strict,
                          "values": [c.value for c in res.calls]}))
""")


@pytest.mark.skipif(sb.build_seccomp_filter() is None, reason="needs a seccomp filter for this architecture")
def test_real_no_namespace_machine_falls_back(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", _NO_NAMESPACES], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    if not ROOT:
        assert "no sandbox mode" in got["strict"] or got["mode"] == "rlimit"
    assert got["mode"] == "rlimit" and got["values"] == [42, "abab"]
    assert "bwrap:" in got["strict"] and "unshare:" in got["strict"] and "lacks: pid namespace" in got["strict"]
    (line,) = got["log"]
    assert "mode=rlimit" in line and "missing protections: pid namespace" in line
