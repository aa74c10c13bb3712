"""Model-written code that attacks the grader or the host: each attack scores 0, the host stays
intact (checked from outside the sandbox), and the next job on the same server scores correctly.

Every attack runs in the full sandbox modes (bubblewrap, and the unshare-based one); the attacks
the rlimit fallback is meant to stop also run there when the trainer is root.
"""

import os
import resource
import secrets
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from rftgym.envs.code import sandbox as sb
from rftgym.envs.code.grader import CodeTask, grade_program
from rftgym.envs.code.pool import Job, SandboxPool

TIMEOUT = 2.0
HANG_BOUND = TIMEOUT + 10.0  # wall-clock seconds that only a hung job exceeds, even on a loaded machine
FULL_MODES = ["bwrap", "unshare"]
ALL_MODES = FULL_MODES + (["rlimit"] if sb.is_real_root() else [])


@pytest.fixture(scope="module")
def pools():
    made = {}
    for mode in ALL_MODES:
        made[mode] = SandboxPool(sb.SandboxConfig(mode=mode, timeout=TIMEOUT), size=1)
        made[mode].warm_up()
    made["baseline"] = {m: len(p.process_ids()) for m, p in made.items()}
    yield made
    for mode in ALL_MODES:
        made[mode].close()


def attack(pool, code, expected, args=(), entry="f"):
    """Grade ``code`` against one test ``entry(*args) == expected``; returns the EvaluateResult."""
    task = CodeTask.from_row({"tests": [{"args": list(args), "expected": expected}]}, {"entry_point": entry})
    return grade_program(textwrap.dedent(code), task, pool)


def assert_healthy(pools, mode):
    """The same server (or its replacement) still grades a correct solution 1.0, nothing is left over."""
    pool = pools[mode]
    task = CodeTask.from_row({"tests": [{"input": "[3, 1, 2]", "output": "[1, 2, 3]"},
                                        {"input": "[]", "output": "[]"}]}, {"entry_point": "sort_it"})
    res = grade_program("def sort_it(xs):\n    return sorted(xs)\n", task, pool)
    assert res.score == 1.0, res.reason
    time.sleep(0.05)
    assert len(pool.process_ids()) == pools["baseline"][mode]


def trainer_alive():
    os.kill(os.getpid(), 0)
    return True


# ---------------------------------------------------------------------------------------------
# resource exhaustion
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ALL_MODES)
@pytest.mark.parametrize("where", ["function", "module"])
def test_infinite_loop(pools, mode, where):
    code = "def f():\n    while True:\n        pass\n" if where == "function" else "while True:\n    pass\ndef f():\n    return 1\n"
    t = time.monotonic()
    res = attack(pools[mode], code, 1)
    assert res.score == 0 and res.metrics["timeout"] == 1.0
    # the sandbox's own deadline stopped it (the parent did not have to give up on the server);
    # the wall-clock bound only rules out a hang, with room for a loaded machine
    assert "sandbox:" not in res.reason, res.reason
    assert time.monotonic() - t < HANG_BOUND
    assert_healthy(pools, mode)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_fork_bomb_is_bounded(pools, mode):
    pool = pools[mode]
    peak = [0]
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            peak[0] = max(peak[0], len(pool.process_ids()))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    code = """
        import os
        def f():
            while True:
                try:
                    os.fork()
                except OSError:
                    pass
    """
    t = time.monotonic()
    try:
        res = attack(pool, code, 1)
    finally:
        stop.set()
        watcher.join()
    assert res.score == 0 and "sandbox:" not in res.reason, res.reason
    assert time.monotonic() - t < HANG_BOUND
    # the job's child plus at most max_processes more, on top of the idle sandbox
    assert peak[0] <= pools["baseline"][mode] + 1 + pool.config.max_processes
    assert_healthy(pools, mode)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_ten_gigabyte_allocation(pools, mode):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    res = attack(pools[mode], "def f():\n    x = bytearray(10 * 2**30)\n    return len(x)\n", 10 * 2 ** 30)
    assert res.score == 0 and "MemoryError" in res.reason
    res = attack(pools[mode], "def f():\n    x = [0] * (10**10 // 8)\n    return len(x)\n", 10 ** 10 // 8)
    assert res.score == 0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB
    assert_healthy(pools, mode)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_one_gigabyte_printed(pools, mode):
    code = """
        import os, sys
        def f():
            chunk = b'x' * 2**20
            written = 0
            for _ in range(1024):
                for fd in (1, 2):
                    try:
                        written += os.write(fd, chunk)
                    except OSError:
                        pass
                try:
                    print('y' * 2**20)
                except OSError:
                    pass
            return written
    """
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.monotonic()
    res = pools[mode].run(Job(textwrap.dedent(code), "f", [()]))
    assert res.error == "" and time.monotonic() - t < HANG_BOUND
    assert len(res.output) <= pools[mode].config.output_bytes
    assert res.calls[0] is None or res.calls[0].value < 2 ** 30  # the file-size limit stopped it
    assert attack(pools[mode], code, 2 * 2 ** 30).score == 0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB
    assert_healthy(pools, mode)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_recursion_bombs(pools, mode):
    pool = pools[mode]
    assert attack(pool, "def f(n=0):\n    return f(n + 1)\n", 1).score == 0
    deep_c = "import sys\nsys.setrecursionlimit(10**7)\ndef f(n=0):\n    return f(n + 1) + 1\n"
    assert attack(pool, deep_c, 1).score == 0
    nested = "def f():\n    x = []\n    for _ in range(10**6):\n        x = [x]\n    return x\n"
    assert attack(pool, nested, []).score == 0
    cyclic = "def f():\n    x = []\n    x.append(x)\n    return x\n"
    assert attack(pool, cyclic, [[]]).score == 0
    huge = "def f():\n    x = ['y' * 10**6] * 100\n    return [x] * 100\n"  # 10 GB once serialized
    res = pool.run(Job(huge, "f", [()]))
    assert res.calls[0] is None or not res.calls[0].ok
    assert_healthy(pools, mode)


# ---------------------------------------------------------------------------------------------
# the host: files, processes, network
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", FULL_MODES)
def test_writing_outside_the_work_dir(pools, mode, tmp_path):
    token = secrets.token_hex(8)
    home = os.path.expanduser("~")
    targets = [str(tmp_path / "pwned"), f"/tmp/rftgym-pwned-{token}", os.path.join(home, f"rftgym-pwned-{token}"),
               f"/etc/rftgym-pwned-{token}", f"/usr/rftgym-pwned-{token}", os.path.join(os.getcwd(), f"rftgym-pwned-{token}"),
               f"/dev/shm/rftgym-pwned-{token}", f"/proc/sys/kernel/rftgym-{token}"]
    code = f"""
        import os
        def f():
            done = 0
            for p in {targets!r}:
                try:
                    os.makedirs(os.path.dirname(p), exist_ok=True)
                    with open(p, 'w') as fh:
                        fh.write('pwned')
                    done += 1
                except OSError:
                    pass
            return done
    """
    try:
        res = attack(pools[mode], code, len(targets))
        assert res.score == 0
        assert [p for p in targets if os.path.exists(p)] == []
    finally:
        for p in targets:
            if os.path.isfile(p):
                os.remove(p)
    assert_healthy(pools, mode)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_reading_secret_files(pools, mode, tmp_path):
    token = secrets.token_hex(16)
    in_tmp = tmp_path / "secret.txt"
    in_home = os.path.join(os.path.expanduser("~"), f".rftgym-secret-{token[:8]}")
    paths = [str(in_tmp), in_home]
    for p in paths:
        with open(p, "w") as fh:
            fh.write(token)
        # world-readable in the namespace modes: only the private file system hides them
        os.chmod(p, 0o644 if mode in FULL_MODES else 0o600)
    code = f"""
        def f():
            for p in {paths!r}:
                try:
                    return open(p).read()
                except OSError:
                    pass
            return 'nothing'
    """
    try:
        res = pools[mode].run(Job(textwrap.dedent(code), "f", [()]))
        assert res.calls[0].ok and res.calls[0].value == "nothing"
        assert attack(pools[mode], code, token).score == 0
        assert open(in_tmp).read() == token
    finally:
        os.remove(in_home)
    assert_healthy(pools, mode)


@pytest.mark.parametrize("mode", FULL_MODES)
def test_reading_the_trainers_environment(pools, mode):
    token = "TOKEN-" + secrets.token_hex(12)
    decoy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                             env={**os.environ, "RFTGYM_TRAINER_SECRET": token})
    try:
        code = f"""
            import os
            def f():
                found = []
                for pid in ({os.getpid()}, {decoy.pid}, 1, 'self'):
                    for name in ('environ', 'cmdline'):
                        try:
                            found.append(open(f'/proc/{{pid}}/{{name}}', 'rb').read().decode('latin-1'))
                        except OSError:
                            pass
                found.append(repr(dict(os.environ)))
                return '\\n'.join(found)
        """
        res = pools[mode].run(Job(textwrap.dedent(code), "f", [()]))
        seen = res.calls[0].value
        assert token not in seen and "PYTHONPATH" not in seen and os.environ.get("HOME", "~~") not in seen.split("'")
        assert attack(pools[mode], code.replace("return '\\\\n'.join(found)", "return found[0] if found else ''"),
                      open(f"/proc/{decoy.pid}/environ", "rb").read().decode("latin-1")).score == 0
    finally:
        decoy.kill()
        decoy.wait()
    assert_healthy(pools, mode)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_connecting_to_a_loopback_listener(pools, mode):
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(5)
    tcp.settimeout(0.3)
    port = tcp.getsockname()[1]
    abstract = None
    if mode in FULL_MODES:  # abstract unix sockets live in the network namespace
        abstract = socket.socket(socket.AF_UNIX)
        name = "\0rftgym-" + secrets.token_hex(6)
        abstract.bind(name)
        abstract.listen(5)
        abstract.settimeout(0.3)
    code = f"""
        import ctypes, struct
        def f():
            out = []
            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.socket(2, 1, 0)
            addr = struct.pack('<HH4s8x', 2, {port} >> 8 | ({port} & 255) << 8, bytes([127, 0, 0, 1]))
            out.append(('ctypes-tcp', fd, fd >= 0 and libc.connect(fd, addr, len(addr))))
            try:
                import socket
                s = socket.create_connection(('127.0.0.1', {port}), timeout=1)
                s.sendall(b'pwned')
                out.append('tcp connected')
            except Exception as e:
                out.append(type(e).__name__)
            if {abstract is not None!r}:
                import socket
                try:
                    u = socket.socket(socket.AF_UNIX)
                    u.connect({name if abstract else ''!r})
                    u.sendall(b'pwned')
                    out.append('unix connected')
                except OSError as e:
                    out.append(type(e).__name__)
            return 'connected' if any('connected' in str(o) for o in out) else repr(out)
    """
    try:
        assert attack(pools[mode], code, "connected").score == 0
        for srv in (tcp, abstract):
            if srv is not None:
                with pytest.raises(socket.timeout):
                    srv.accept()
    finally:
        tcp.close()
        if abstract:
            abstract.close()
    assert_healthy(pools, mode)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_killing_the_parent(pools, mode):
    decoy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    pool = pools[mode]
    launchers = pool.server_pids()
    try:
        code = f"""
            import os, signal, ctypes
            def f():
                hits = 0
                for pid in ({os.getpid()}, {decoy.pid}, {launchers[0]}, os.getppid(), 1, -1, -os.getpgid(0)):
                    for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
                        try:
                            os.kill(pid, sig)
                            hits += 1
                        except OSError:
                            pass
                ctypes.CDLL(None).kill({os.getpid()}, 9)
                return hits
        """
        res = attack(pool, code, 1000)
        assert res.score == 0
        time.sleep(0.1)
        assert trainer_alive() and decoy.poll() is None
    finally:
        decoy.kill()
        decoy.wait()
    assert_healthy(pools, mode)


@pytest.mark.parametrize("mode", FULL_MODES)
def test_deleting_files_in_the_parents_work_dir(pools, mode, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sentinel = tmp_path / "checkpoint.bin"
    sentinel.write_bytes(b"weights")
    code = f"""
        import os, shutil
        def f():
            gone = 0
            for p in ({str(sentinel)!r}, 'checkpoint.bin', {os.path.join(os.getcwd(), 'checkpoint.bin')!r}):
                try:
                    os.remove(p)
                    gone += 1
                except OSError:
                    pass
            shutil.rmtree({str(tmp_path)!r}, ignore_errors=True)
            return gone
    """
    assert attack(pools[mode], code, 1).score == 0
    assert sentinel.read_bytes() == b"weights"
    assert_healthy(pools, mode)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_a_daemon_does_not_outlive_the_job(pools, mode, tmp_path):
    pool = pools[mode]
    marker = tmp_path / "daemon-was-here"
    code = f"""
        import os, time
        def f():
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    for i in range(200):
                        for p in ({str(marker)!r}, 'daemon.txt'):
                            try:
                                open(p, 'a').write(str(i))
                            except OSError:
                                pass
                        time.sleep(0.02)
                    os._exit(0)
                os._exit(0)
            time.sleep(0.1)
            return 'spawned'
    """
    assert attack(pool, code, "daemon gone").score == 0
    time.sleep(0.3)
    assert len(pool.process_ids()) == pools["baseline"][mode]
    look = "import os\ndef f():\n    return sorted(os.listdir('.'))\n"
    assert pool.run(Job(look, "f", [()])).calls[0].value == []
    if mode in FULL_MODES:
        assert not marker.exists()
    assert_healthy(pools, mode)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_leftovers_never_reach_the_next_job(mode):
    """Locked directories are unlocked and removed; a tree too deep to remove retires the server."""
    look = "import os\ndef f():\n    return sorted(os.listdir('.'))\n"
    locked = ("import os\ndef f():\n    os.makedirs('a/b/c')\n    open('a/b/c/x', 'w').write('1')\n"
              "    os.chmod('a/b/c', 0)\n    os.chmod('a/b', 0o100)\n    os.chmod('a', 0)\n    return 1\n")
    deep = "import os\ndef f():\n    for _ in range(3000):\n        os.mkdir('d')\n        os.chdir('d')\n    return 1\n"
    with SandboxPool(sb.SandboxConfig(mode=mode, timeout=TIMEOUT), size=1) as pool:
        assert pool.run(Job(locked, "f", [()])).status["clean"] is True
        assert pool.run(Job(look, "f", [()])).calls[0].value == []
        assert pool.run(Job(deep, "f", [()])).status["clean"] is False
        assert pool.run(Job(look, "f", [()])).calls[0].value == [] and pool.spawned == 2


# ---------------------------------------------------------------------------------------------
# fooling the grader
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ALL_MODES)
@pytest.mark.parametrize("code", [
    "import os\nos._exit(0)\ndef f(x):\n    return x\n",
    "import sys\nsys.exit(0)\ndef f(x):\n    return x\n",
    "def f(x):\n    import os\n    os._exit(0)\n",
    "def f(x):\n    raise SystemExit(0)\n",
    "def f(x):\n    import os, signal\n    os.kill(os.getpid(), signal.SIGKILL)\n",
], ids=["module-os-exit", "module-sys-exit", "os-exit", "system-exit", "self-kill"])
def test_exiting_before_the_tests(pools, mode, code):
    task = CodeTask.from_row({"tests": [{"input": "41", "output": "42"}, {"input": "1", "output": "2"}]},
                             {"entry_point": "f"})
    assert grade_program(code, task, pools[mode]).score == 0
    assert_healthy(pools, mode)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_atexit_and_printed_markers(pools, mode):
    code = """
        import atexit, os, sys
        forged = b'{"i":0,"v":["i","2a"]}'
        atexit.register(lambda: (os.write(3, len(forged).to_bytes(4, 'big') + b'V' + forged), print('ALL TESTS PASSED')))
        print('PASSED 1/1')
        def f(x):
            print('ok: all tests passed', file=sys.stderr)
            sys.exit(0)
    """
    assert attack(pools[mode], code, 42, args=[41]).score == 0
    assert attack(pools[mode], code, secrets.token_hex(8), args=[41]).score == 0
    assert_healthy(pools, mode)


@pytest.mark.parametrize("mode", ALL_MODES)
@pytest.mark.parametrize("code", [
    "class E:\n    def __eq__(self, o):\n        return True\n    __hash__ = None\ndef f(x):\n    return E()\n",
    "class S(str):\n    def __eq__(self, o):\n        return True\n    __hash__ = str.__hash__\ndef f(x):\n    return S('nope')\n",
    "class I(int):\n    def __eq__(self, o):\n        return True\n    __hash__ = int.__hash__\ndef f(x):\n    return I(0)\n",
    "class L(list):\n    def __eq__(self, o):\n        return True\ndef f(x):\n    return L([0])\n",
    "class N(float):\n    def __eq__(self, o):\n        return True\n    def __ne__(self, o):\n        return False\ndef f(x):\n    return N('nan')\n",
], ids=["always-equal", "str-subclass", "int-subclass", "list-subclass", "nan-subclass"])
def test_objects_that_equal_everything(pools, mode, code):
    assert attack(pools[mode], code, 42, args=[41]).score == 0
    assert attack(pools[mode], code, [42], args=[41]).score == 0
    assert_healthy(pools, mode)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_patched_builtins_and_serializer(pools, mode):
    code = """
        import builtins, json, sys
        main = sys.modules['__main__']
        builtins.isinstance = lambda *a: True
        builtins.repr = lambda o: '42'
        json.dumps = lambda *a, **k: '{"i": 0, "v": ["i", "2a"]}'
        main.encode_value = lambda v, depth=0: ['s', 'forged']
        main._call = lambda fn, i, args: main._emit(b'V', {'i': i, 'v': ['?', 'x']})
        def f(x):
            return 'forged'
    """
    # the expected value is unknown to the program: whatever it forges is a guess
    assert attack(pools[mode], code, secrets.token_hex(8), args=[41]).score == 0
    assert attack(pools[mode], code, 42, args=[41]).score == 1.0  # a forged guess is just an answer
    assert_healthy(pools, mode)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_reading_expected_values_from_frames_memory_and_files(pools, mode):
    token = "EXPECTED-" + secrets.token_hex(12)
    code = f"""
        import gc, os, sys
        def scan(value, needle):
            try:
                return needle in str(value)
            except Exception:
                return False
        def f(x):
            needle = 'EXPECTED-'
            frame = sys._getframe()
            while frame is not None:
                for ns in (frame.f_locals, frame.f_globals):
                    for v in list(ns.values()):
                        if scan(v, needle) and 'needle' not in str(v)[:20]:
                            return str(v)
                frame = frame.f_back
            for obj in gc.get_objects():
                if isinstance(obj, str) and obj.startswith(needle) and len(obj) > len(needle) + 5:
                    return obj
            for root in ('/tmp', '/proc/1', {os.path.dirname(__file__)!r}, '/'):
                for dirpath, dirs, files in os.walk(root):
                    if dirpath.count('/') > 4:
                        continue
                    for name in files[:50]:
                        try:
                            data = open(os.path.join(dirpath, name), 'rb').read(1 << 16).decode('latin-1')
                        except Exception:
                            continue
                        if needle in data:
                            i = data.index(needle)
                            return data[i:i + 33]
            return 'not found'
    """
    res = pools[mode].run(Job(textwrap.dedent(code), "f", [(1,)], timeout=TIMEOUT))
    assert res.calls[0] is None or token not in str(res.calls[0].value)
    assert attack(pools[mode], code, token, args=[1]).score == 0
    assert_healthy(pools, mode)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_forging_the_result_channel(pools, mode):
    code = """
        import json, os
        def frame(kind, obj):
            body = kind + json.dumps(obj).encode()
            return len(body).to_bytes(4, 'big') + body
        def f(x):
            for i in range(10):
                os.write(3, frame(b'V', {'i': i, 'v': ['i', '2a'], 'pass': True}))
            os.write(3, frame(b'L', {'ok': True, 'passed': 'all'}))
            os.write(1, frame(b'E', {'timeout': False, 'passed': 999}))
            os.write(3, b'\\xff\\xff\\xff\\xff' + b'garbage' * 100)
            os._exit(0)
    """
    # the forged value 42 is a guess; against an expected value it did not know, it fails
    task = CodeTask.from_row({"tests": [{"input": "1", "output": "7"}, {"input": "2", "output": "'x'"}]},
                             {"entry_point": "f"})
    res = grade_program(textwrap.dedent(code), task, pools[mode])
    assert res.score == 0 and res.metrics["passed"] == 0
    assert_healthy(pools, mode)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_ctypes_calls_into_libc(pools, mode, tmp_path):
    sentinel = tmp_path / "keep.txt"
    sentinel.write_text("keep")
    code = f"""
        import ctypes
        def f():
            libc = ctypes.CDLL(None, use_errno=True)
            out = []
            out.append(libc.kill({os.getpid()}, 9))
            out.append(libc.ptrace(16, 1, 0, 0))
            out.append(libc.unshare(0x10000000))
            out.append(libc.mount(b'none', b'/tmp', b'tmpfs', 0, None))
            out.append(libc.syscall(302, 1, 7, None, None))  # prlimit64 on another process
            out.append(libc.system(b'rm -rf {tmp_path}; kill -9 {os.getpid()}'))
            out.append(libc.setuid(0))
            return out
    """
    assert attack(pools[mode], code, [0, 0, 0, 0, 0, 0, 0]).score == 0
    assert trainer_alive() and sentinel.read_text() == "keep"
    assert_healthy(pools, mode)


def test_server_survives_attacks_without_respawning_in_namespace_modes(pools):
    """In a PID namespace the server is pid 1: a job cannot kill it, so no attack above cost a restart."""
    for mode in FULL_MODES:
        assert pools[mode].spawned == 1
