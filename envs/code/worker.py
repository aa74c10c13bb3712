"""The runner that lives inside the sandbox, plus the value codec and framing it shares with the parent.

This file is executed inside the sandbox as ``python -I -S -c <source of this file> + main()``; it
must only use the standard library. The parent also imports it for :func:`encode_value`,
:func:`decode_value`, :func:`pack_frame` and :class:`FrameReader`.

Inside the sandbox one *server* process (pid 1 of its PID namespace where there is one) reads
jobs from its stdin. For every job it forks a child that sets its resource limits, imports the
candidate program and calls its entry point once per test input, writing each return value,
serialized with a strict type tag, to a pipe. The server relays the child's bytes to the parent
unchanged, enforces the wall-clock deadline, kills every process the job left behind and wipes
the work directory. Nothing in here is trusted by the parent: it only reads values.

Wire format, every message a frame ``<u32 big-endian length><1-byte kind><payload>``:
  parent -> server:  ``I`` init config (JSON), ``J`` job (JSON), ``C`` call (interactive), ``X`` end of calls
  server -> parent:  ``R`` ready (JSON), ``D`` raw bytes of the child's result stream, ``E`` end of job (JSON)
  child  -> parent:  frames inside the ``D`` stream: ``L`` program loaded (JSON), ``V`` a call's result (JSON)
"""

import json
import os
import select
import signal
import struct
import sys
import time

# ---------------------------------------------------------------------------------------------
# Value codec: every value is a JSON list [tag, payload]. Only builtin value types are encoded.
# ---------------------------------------------------------------------------------------------

MAX_DEPTH = 64
MAX_INT_HEX_DIGITS = 20_000


class ValueDecodeError(ValueError):
    """A serialized value is malformed, too deep or too large."""


def encode_value(value, depth=0):
    """Encode a builtin value as tagged JSON-compatible lists (``["i", "ff"]``, ``["l", [...]]``...)."""
    if depth > MAX_DEPTH:
        raise ValueError("value nested too deeply to serialize")
    if value is None:
        return ["n"]
    if isinstance(value, bool):
        return ["b", bool(value)]
    if isinstance(value, int):
        return ["i", format(int(value), "x")]
    if isinstance(value, float):
        return ["f", repr(float(value))]
    if isinstance(value, complex):
        return ["c", [repr(value.real), repr(value.imag)]]
    if isinstance(value, str):
        return ["s", str(value)]
    if isinstance(value, (bytes, bytearray)):
        return ["y", bytes(value).hex()]
    d = depth + 1
    if isinstance(value, list):
        return ["l", [encode_value(v, d) for v in value]]
    if isinstance(value, tuple):
        return ["t", [encode_value(v, d) for v in value]]
    if isinstance(value, dict):
        return ["d", [[encode_value(k, d), encode_value(v, d)] for k, v in value.items()]]
    if isinstance(value, frozenset):
        return ["F", [encode_value(v, d) for v in value]]
    if isinstance(value, set):
        return ["S", [encode_value(v, d) for v in value]]
    return ["?", type(value).__name__[:100]]


class Unsupported:
    """Stands for a returned value of a type the codec does not carry; equal to nothing."""

    __slots__ = ("type_name",)

    def __init__(self, type_name):
        self.type_name = type_name

    def __eq__(self, other):
        return False

    def __ne__(self, other):
        return True

    __hash__ = object.__hash__

    def __repr__(self):
        return f"<unsupported {self.type_name}>"


def _seq(payload):
    if type(payload) is not list:
        raise ValueDecodeError("container payload must be a list")
    return payload


def decode_value(node, depth=0):
    """Strictly decode what :func:`encode_value` produces into builtin values.

    Raises :class:`ValueDecodeError` on anything else (unknown tag, wrong payload type, too deep,
    unhashable set element or dict key, oversized integer)."""
    if depth > MAX_DEPTH:
        raise ValueDecodeError("value nested too deeply")
    if type(node) is not list or not node or type(node[0]) is not str:
        raise ValueDecodeError("a value must be a [tag, payload] list")
    tag = node[0]
    if tag == "n" and len(node) == 1:
        return None
    if len(node) != 2:
        raise ValueDecodeError(f"bad arity for tag {tag!r}")
    p = node[1]
    tp = type(p)
    if tag == "b" and tp is bool:
        return p
    if tag == "i" and tp is str:
        digits = p[1:] if p.startswith("-") else p
        if not digits or len(digits) > MAX_INT_HEX_DIGITS or digits.strip("0123456789abcdef"):
            raise ValueDecodeError("malformed integer")
        return int(p, 16)
    if tag == "f" and tp is str and len(p) <= 64:
        try:
            return float(p)
        except ValueError:
            raise ValueDecodeError("malformed float") from None
    if tag == "s" and tp is str:
        return p
    if tag == "y" and tp is str:
        try:
            return bytes.fromhex(p)
        except ValueError:
            raise ValueDecodeError("malformed bytes") from None
    if tag == "c" and tp is list and len(p) == 2 and all(type(x) is str and len(x) <= 64 for x in p):
        try:
            return complex(float(p[0]), float(p[1]))
        except ValueError:
            raise ValueDecodeError("malformed complex") from None
    d = depth + 1
    try:
        if tag == "l":
            return [decode_value(v, d) for v in _seq(p)]
        if tag == "t":
            return tuple(decode_value(v, d) for v in _seq(p))
        if tag == "S":
            return {decode_value(v, d) for v in _seq(p)}
        if tag == "F":
            return frozenset(decode_value(v, d) for v in _seq(p))
        if tag == "d":
            out = {}
            for item in _seq(p):
                if type(item) is not list or len(item) != 2:
                    raise ValueDecodeError("dict items must be [key, value] pairs")
                out[decode_value(item[0], d)] = decode_value(item[1], d)
            return out
    except TypeError as e:  # unhashable set element / dict key
        raise ValueDecodeError(f"unhashable value: {e}") from None
    if tag == "?" and tp is str:
        return Unsupported(p[:100])
    raise ValueDecodeError(f"unknown tag {tag[:10]!r} or bad payload")


# ---------------------------------------------------------------------------------------------
# Framing
# ---------------------------------------------------------------------------------------------

_LEN = struct.Struct(">I")


def pack_frame(kind, payload=b""):
    """One frame: 4-byte big-endian length of kind+payload, 1-byte kind, payload."""
    return _LEN.pack(len(payload) + 1) + kind + payload


class FrameReader:
    """Incremental frame parser; refuses frames larger than ``max_frame`` bytes."""

    def __init__(self, max_frame):
        self.max_frame = max_frame
        self._buf = bytearray()

    def feed(self, data):
        self._buf += data

    def next(self):
        """The next complete frame as ``(kind, payload)``, or None if more bytes are needed."""
        if len(self._buf) < 4:
            return None
        (n,) = _LEN.unpack_from(self._buf)
        if n < 1 or n > self.max_frame:
            raise ValueError(f"frame of {n} bytes exceeds the limit of {self.max_frame}")
        if len(self._buf) < 4 + n:
            return None
        kind = bytes(self._buf[4:5])
        payload = bytes(self._buf[5:4 + n])
        del self._buf[:4 + n]
        return kind, payload


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _read_exact(fd, n):
    chunks = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _read_frame_blocking(fd, max_frame):
    head = _read_exact(fd, 4)
    if head is None:
        return None
    (n,) = _LEN.unpack(head)
    if n < 1 or n > max_frame:
        raise ValueError("oversized frame")
    body = _read_exact(fd, n)
    if body is None:
        return None
    return body[:1], body[1:]


# ---------------------------------------------------------------------------------------------
# Privilege and namespace setup (trusted code, runs before any candidate code)
# ---------------------------------------------------------------------------------------------

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_SECCOMP = 22
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
SECCOMP_MODE_FILTER = 2

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 1024, 2048, 1 << 21
MNT_DETACH = 2

_libc_handle = None


def _libc():
    global _libc_handle
    if _libc_handle is None:
        import ctypes

        _libc_handle = ctypes.CDLL(None, use_errno=True)
    return _libc_handle


def _check(ret, what):
    if ret != 0:
        import ctypes

        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _prctl(option, a2=0, a3=0, a4=0, a5=0):
    import ctypes

    c = ctypes.c_ulong
    _check(_libc().prctl(option, c(a2), c(a3), c(a4), c(a5)), f"prctl({option})")


def install_seccomp(filter_bytes):
    """Set no_new_privs and load a classic-BPF seccomp filter (built by the parent)."""
    import ctypes

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    buf = ctypes.create_string_buffer(filter_bytes, len(filter_bytes))
    prog = SockFprog(len(filter_bytes) // 8, ctypes.addressof(buf))
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    _check(_libc().prctl(PR_SET_SECCOMP, ctypes.c_ulong(SECCOMP_MODE_FILTER), ctypes.byref(prog),
                         ctypes.c_ulong(0), ctypes.c_ulong(0)), "seccomp")


def _capabilities():
    """(effective, permitted) capability masks of this process, via capget(2)."""
    import ctypes

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    hdr = Header(0x20080522, 0)
    data = (Data * 2)()
    _check(_libc().capget(ctypes.byref(hdr), data), "capget")
    eff = data[0].effective | (data[1].effective << 32)
    prm = data[0].permitted | (data[1].permitted << 32)
    return eff, prm


def _drop_bounding_set():
    """Empty the capability bounding set (needs CAP_SETPCAP; silently partial without it)."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last = int(f.read())
    except OSError:
        last = 63
    for cap in range(last + 1):
        try:
            _prctl(PR_CAPBSET_DROP, cap)
        except OSError:
            pass


def _clear_capabilities():
    """Clear the effective, permitted and inheritable capability sets."""
    import ctypes

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    _check(_libc().capset(ctypes.byref(Header(0x20080522, 0)), (Data * 2)()), "capset")


def _mount(src, target, fstype, flags, data=None):
    import ctypes

    enc = (lambda s: None if s is None else s.encode())
    _check(_libc().mount(enc(src), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
           f"mount {src} on {target}")


def _locked_flags(path):
    """Mount flags a user namespace may not clear when remounting ``path``."""
    f = os.statvfs(path).f_flag
    out = 0
    for st, ms in ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC),
                   (os.ST_NOATIME, MS_NOATIME), (os.ST_NODIRATIME, MS_NODIRATIME),
                   (os.ST_RELATIME, MS_RELATIME)):
        if f & st:
            out |= ms
    return out


def _pivot_root(spec):
    """Build a minimal root (read-only binds, /proc, a few /dev nodes, a sized /tmp) and pivot into it.

    Runs as root of fresh mount and PID namespaces (the ``unshare`` mode)."""
    fds = {}
    for src, dest in spec["binds"]:
        try:
            fds[dest] = os.open(src, os.O_PATH)
        except FileNotFoundError:
            pass
    devs = {}
    for name in ("null", "zero", "full", "random", "urandom"):
        try:
            devs[name] = os.open("/dev/" + name, os.O_PATH)
        except OSError:
            pass
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    new = "/tmp"  # staging mount point; hidden from the host by the private mount namespace
    _mount("tmpfs", new, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
    for dest, fd in fds.items():
        target = new + dest
        src = f"/proc/self/fd/{fd}"
        if os.path.isdir(src):
            os.makedirs(target, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            open(target, "a").close()
        try:
            _mount(src, target, None, MS_BIND)
        except OSError:
            _mount(src, target, None, MS_BIND | MS_REC)
        _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV
               | _locked_flags(target))
    os.makedirs(new + "/dev", exist_ok=True)
    for name, fd in devs.items():
        open(new + "/dev/" + name, "w").close()
        _mount(f"/proc/self/fd/{fd}", new + "/dev/" + name, None, MS_BIND)
    os.makedirs(new + "/proc", exist_ok=True)
    try:
        _mount("proc", new + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    except OSError:
        pass  # a masked host /proc forbids a fresh one; Python runs without /proc
    os.makedirs(new + "/tmp", exist_ok=True)
    _mount("tmpfs", new + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV,
           f"size={int(spec['tmpfs_bytes'])},mode=1777")
    for fd in list(fds.values()) + list(devs.values()):
        os.close(fd)
    os.chdir(new)
    nr = {"x86_64": 155, "aarch64": 41}.get(os.uname().machine)
    if nr is None:
        raise OSError("pivot_root: unsupported architecture " + os.uname().machine)
    _check(_libc().syscall(nr, b".", b"."), "pivot_root")
    _check(_libc().umount2(b".", MNT_DETACH), "umount old root")
    os.chdir("/")
    _mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


# ---------------------------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------------------------

_PRELOAD = (
    "abc array bisect calendar cmath collections copy dataclasses datetime decimal enum fractions "
    "functools hashlib heapq itertools math numbers operator random re statistics string struct "
    "textwrap typing unicodedata shutil ctypes fcntl resource types"
).split()


def _preload():
    """Import common modules and build common typing aliases once, so each forked job finds them ready."""
    for name in _PRELOAD:
        try:
            __import__(name)
        except ImportError:
            pass
    try:
        import typing as t

        for arg in (int, str, float, bool, t.Any):
            for alias in (t.List, t.Tuple, t.Optional, t.Set, t.Iterable, t.Sequence):
                alias[arg]
            t.Dict[str, arg], t.Tuple[arg, arg], t.Tuple[arg, ...], t.List[t.List[arg]], t.Union[arg, None]
        t.Tuple[int, int], t.Tuple[float, float], t.Tuple[str, int], t.Tuple[int, str], t.List[t.Tuple[int, int]]
        t.Dict[int, int], t.Dict[str, t.List[str]], t.Dict[str, t.List[int]], t.Callable[..., t.Any]
        list[int], list[str], dict[str, int], tuple[int, int], list[list[int]], set[int]
    except Exception:  # noqa: BLE001 - only a warm-up
        pass


def _kill_descendants_via_proc(own_pid):
    """Kill and reap every process whose parent is this server (we are a child subreaper)."""
    for _ in range(200):
        children = []
        try:
            entries = os.listdir("/proc")
        except OSError:
            entries = []
        for e in entries:
            if not e.isdigit():
                continue
            try:
                with open(f"/proc/{e}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
            if ppid == own_pid:
                children.append(int(e))
        if not children:
            return True
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for pid in children:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
    return False


class Server:
    def __init__(self, cfg):
        self.cfg = cfg
        self.workdir = cfg["workdir"]
        self.kill_all = cfg["kill_all"]
        self.pid = os.getpid()
        self.limits = cfg["limits"]
        self.max_result = int(cfg["max_result_bytes"])
        self.output_bytes = int(cfg["output_bytes"])
        self.max_frame = int(cfg["max_frame"])
        # every frame from the parent goes through this one buffer: a read may return several
        # frames (an end-of-calls marker and the next job), and none of them may be dropped
        self.requests = FrameReader(self.max_frame)
        # the job's stdout/stderr: an anonymous file, truncated before each job, read (capped) after
        try:
            self.out_fd = os.memfd_create("output")
        except (AttributeError, OSError):
            path = os.path.join(self.workdir, ".rftgym-output")
            self.out_fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            os.unlink(path)

    # -- after every job: nothing of it survives --------------------------------------------
    def _reap_everything(self):
        if self.kill_all:
            deadline = time.monotonic() + 2.0
            while True:
                try:
                    os.kill(-1, signal.SIGKILL)
                except OSError:
                    pass
                try:
                    pid, _ = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    return True
                if pid == 0:
                    if time.monotonic() > deadline:
                        return False
                    time.sleep(0.001)
            return True
        return _kill_descendants_via_proc(self.pid)

    def _clean_workdir(self):
        """Empty the work dir; False if something could not be removed (the server is then replaced)."""
        import shutil

        try:
            for entry in os.scandir(self.workdir):
                if entry.is_dir(follow_symlinks=False):
                    os.chmod(entry.path, 0o700)  # a job may have locked its own dirs
                    for root, dirs, _ in os.walk(entry.path):
                        for d in dirs:
                            os.chmod(os.path.join(root, d), 0o700, follow_symlinks=False)
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
            return not os.listdir(self.workdir)
        except Exception:  # noqa: BLE001 - e.g. a tree too deep to recurse into
            return False

    def _send(self, kind, payload=b""):
        _write_all(1, pack_frame(kind, payload))

    # -- the job ------------------------------------------------------------------------------
    def run_job(self, job):
        interactive = bool(job.get("interactive"))
        timeout = float(job["timeout"])
        res_r, res_w = os.pipe()
        req_r, req_w = os.pipe() if interactive else (-1, -1)
        out_fd = self.out_fd
        os.ftruncate(out_fd, 0)
        os.lseek(out_fd, 0, os.SEEK_SET)
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:
            try:
                _child(job, res_w, req_r, out_fd, self.workdir, self.limits, timeout)
            finally:
                os._exit(0)
        os.close(res_w)
        if interactive:
            os.close(req_r)
            os.set_blocking(req_w, False)
        os.set_blocking(res_r, False)
        try:
            pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            pidfd = -1
        deadline = start + timeout
        status = {"timeout": False, "overflow": False}
        pending_req = bytearray()
        ended_calls = not interactive
        child_done = False
        self._sent = 0

        def take_calls():  # move buffered calls to the child's queue, up to the end-of-calls marker
            nonlocal ended_calls
            while not ended_calls:
                fr = self.requests.next()
                if fr is None:
                    return
                if fr[0] == b"C":
                    pending_req.extend(pack_frame(b"C", fr[1]))
                elif fr[0] == b"X":
                    ended_calls = True

        take_calls()  # calls may have arrived in the same read as the job
        while True:
            if child_done:
                self._drain(res_r, status)
                break
            now = time.monotonic()
            if now >= deadline:
                status["timeout"] = True
                break
            rlist = [res_r]
            if pidfd >= 0:
                rlist.append(pidfd)
            if not ended_calls:
                rlist.append(0)
            wlist = [req_w] if (pending_req and req_w >= 0) else []
            wait = deadline - now if pidfd >= 0 else min(deadline - now, 0.02)
            r, w, _ = select.select(rlist, wlist, [], wait)
            if res_r in r and not self._drain(res_r, status):
                break
            if pidfd >= 0 and pidfd in r:
                child_done = True
            elif pidfd < 0:
                try:
                    if os.waitpid(pid, os.WNOHANG)[0] == pid:
                        pid, child_done = -1, True
                except ChildProcessError:
                    pid, child_done = -1, True
            if 0 in r:
                data = os.read(0, 65536)
                if not data:
                    raise SystemExit(0)  # the parent went away
                self.requests.feed(data)
                take_calls()
            if req_w >= 0 and pending_req and (req_w in w or not wlist):
                try:
                    del pending_req[:os.write(req_w, pending_req)]
                except BlockingIOError:
                    pass
                except BrokenPipeError:
                    pending_req.clear()
            if interactive and ended_calls and not pending_req and req_w >= 0:
                os.close(req_w)
                req_w = -1
        status["elapsed"] = time.monotonic() - start
        if pid > 0:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                _, wstatus = os.waitpid(pid, 0)
                if os.WIFSIGNALED(wstatus):
                    status["signal"] = os.WTERMSIG(wstatus)
                else:
                    status["exit"] = os.WEXITSTATUS(wstatus)
            except ChildProcessError:
                pass
        status["clean"] = self._reap_everything()
        for fd in (res_r, req_w, pidfd):
            if fd >= 0:
                os.close(fd)
        try:
            head = os.pread(out_fd, self.output_bytes, 0)
        except OSError:
            head = b""
        status["clean"] = self._clean_workdir() and status["clean"]
        status["output"] = head.decode("utf-8", "replace")
        self._send(b"E", json.dumps(status).encode())
        if not ended_calls:
            self._drain_calls_until_end()

    def _drain(self, fd, status):
        """Relay what the child wrote; False once the stream ended or went over its size limit."""
        while True:
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                return True
            if not data:
                return False
            self._sent += len(data)
            if self._sent > self.max_result:
                status["overflow"] = True
                return False
            self._send(b"D", data)

    def _next_request(self):
        """The next frame from the parent (blocking); None once the parent closed our input."""
        while True:
            fr = self.requests.next()
            if fr is not None:
                return fr
            data = os.read(0, 65536)
            if not data:
                return None
            self.requests.feed(data)

    def _drain_calls_until_end(self):
        """Skip the rest of an ended session's calls, up to and including its end marker; frames
        after it (the next job) stay buffered."""
        while True:
            fr = self._next_request()
            if fr is None:
                raise SystemExit(0)
            if fr[0] == b"X":
                return

    def serve(self):
        while True:
            fr = self._next_request()
            if fr is None:
                return
            kind, payload = fr
            if kind == b"J":
                self.run_job(json.loads(payload))
            elif kind == b"X":
                continue  # a late end marker from a session that already finished
            else:
                raise SystemExit(2)


def _set_limit(res, value):
    import resource

    resource.setrlimit(res, (value, value))


def _child(job, res_w, req_r, out_fd, workdir, limits, timeout):
    """The forked child: limits, then the candidate. Everything after the limits is untrusted."""
    import fcntl
    import resource

    os.setpgid(0, 0)
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    # move the three fds we keep out of the way first, so no dup2 below clobbers another
    out_hi = fcntl.fcntl(out_fd, fcntl.F_DUPFD, 100)
    res_hi = fcntl.fcntl(res_w, fcntl.F_DUPFD, 100)
    req_hi = fcntl.fcntl(req_r, fcntl.F_DUPFD, 100) if req_r >= 0 else -1
    devnull = os.open("/dev/null", os.O_RDONLY) if os.path.exists("/dev/null") else -1
    if devnull >= 0:
        os.dup2(devnull, 0)
    os.dup2(out_hi, 1)
    os.dup2(out_hi, 2)
    os.dup2(res_hi, 3)
    if req_hi >= 0:
        os.dup2(req_hi, 4)
    os.closerange(5 if req_hi >= 0 else 4, 1 << 16)
    os.chdir(workdir)
    _set_limit(resource.RLIMIT_CORE, 0)
    _set_limit(resource.RLIMIT_CPU, int(timeout) + 2)
    _set_limit(resource.RLIMIT_AS, int(limits["as_bytes"]))
    _set_limit(resource.RLIMIT_FSIZE, int(limits["fsize_bytes"]))
    _set_limit(resource.RLIMIT_NOFILE, int(limits["nofile"]))
    if limits.get("nproc"):
        _set_limit(resource.RLIMIT_NPROC, int(limits["nproc"]))
    _run_candidate(job)
    try:
        sys.stdout.flush()
    except BaseException:  # noqa: BLE001
        pass


def _emit(kind, obj):
    _write_all(3, pack_frame(kind, json.dumps(obj, separators=(",", ":")).encode()))


def _describe(exc):
    text = f"{type(exc).__name__}: {exc}"
    return text[:300]


def _run_candidate(job):
    import builtins
    import types

    module = types.ModuleType("solution")
    module.__dict__["__builtins__"] = builtins
    sys.modules["solution"] = module
    try:
        code = compile(job["program"], "solution.py", "exec")
        exec(code, module.__dict__)
        fn = module.__dict__.get(job["entry_point"])
        if not callable(fn):
            _emit(b"L", {"ok": False, "error": f"no function named {job['entry_point']!r}"})
            return
    except BaseException as exc:  # noqa: BLE001 - the candidate may raise anything, SystemExit included
        _emit(b"L", {"ok": False, "error": _describe(exc)})
        return
    _emit(b"L", {"ok": True})
    if job.get("interactive"):
        while True:
            fr = _read_frame_blocking(4, 1 << 30)
            if fr is None:
                return
            call = json.loads(fr[1])
            _call(fn, call["i"], call["a"])
    else:
        for i, args in enumerate(job["calls"]):
            _call(fn, i, args)


def _call(fn, index, encoded_args):
    try:
        args = decode_value(encoded_args)
        value = fn(*args)
        out = {"i": index, "v": encode_value(value)}
    except BaseException as exc:  # noqa: BLE001
        out = {"i": index, "e": _describe(exc)}
    try:
        _emit(b"V", out)
    except (ValueError, RecursionError, TypeError) as exc:
        _emit(b"V", {"i": index, "e": _describe(exc)})


def main():
    """Entry point inside the sandbox: read the init frame, set up, announce readiness, serve."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fr = _read_frame_blocking(0, 1 << 20)
    if fr is None or fr[0] != b"I":
        raise SystemExit(2)
    cfg = json.loads(fr[1])
    if cfg.get("pdeathsig"):
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if cfg.get("pivot"):
        _pivot_root(cfg["pivot"])
    _preload()
    workdir = cfg["workdir"]
    uid = cfg.get("uid")
    if cfg.get("make_workdir"):
        os.makedirs(workdir, mode=0o700, exist_ok=True)
        if uid is not None and os.geteuid() == 0:
            os.chown(workdir, uid, uid)
    _drop_bounding_set()
    if uid is not None and os.geteuid() == 0:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    _clear_capabilities()
    eff, prm = _capabilities()
    if eff or prm:
        raise SystemExit("capabilities remain after dropping them")
    _prctl(PR_SET_DUMPABLE, 0)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    if cfg.get("seccomp"):
        install_seccomp(bytes.fromhex(cfg["seccomp"]))
    os.chdir(workdir)
    server = Server(cfg)
    server._clean_workdir()
    import gc

    gc.collect()
    gc.freeze()  # keep the collector from touching (and so copying) the server's pages in each child
    ready = {"pid": os.getpid(), "uid": os.getuid(), "euid": os.geteuid(),
             "python": sys.version.split()[0], "cwd": os.getcwd()}
    _write_all(1, pack_frame(b"R", json.dumps(ready).encode()))
    server.serve()
