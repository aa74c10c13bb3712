"""Sandbox modes for running model-written code: configuration, probing, launch commands, seccomp.

Three modes, tried in this order by ``mode="auto"`` (each is probed once per process by actually
starting a sandboxed interpreter and running a job in it):

``bwrap``    bubblewrap: new PID/IPC/UTS/network(/cgroup) namespaces, a root made of read-only
             binds of the system and Python directories, fresh /proc and /dev, a private size-limited
             tmpfs /tmp as work directory, no view of home or the project, empty environment
             (``--clearenv``), dies with its parent. As root bubblewrap runs privileged (no user
             namespace needed) and the worker drops to a per-sandbox unprivileged uid, so
             RLIMIT_NPROC is enforced; as a normal user it uses an unprivileged user namespace.
``unshare``  util-linux ``unshare`` makes the same namespaces and the worker itself builds the
             minimal read-only root and pivots into it (for machines without bubblewrap).
``rlimit``   no namespaces: a separate unprivileged uid (only when the trainer is root), resource
             limits, an empty environment, a private work directory, and the seccomp filter, which
             here is what blocks network sockets. The host file system stays readable wherever its
             permissions allow.

In every mode the worker forks one child per job with rlimits (address space, CPU seconds,
processes, file size, open files) and installs a seccomp filter (x86_64 and aarch64) that denies
non-Unix sockets, ptrace and other cross-process access, namespace and mount calls, keyrings,
BPF, io_uring and kernel module calls.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import platform
import shutil
import struct
import sys
from dataclasses import dataclass

logger = logging.getLogger("rftgym.envs.code.sandbox")

MODES = ("bwrap", "unshare", "rlimit")

# What a full sandbox provides; the log line names whatever the chosen mode lacks.
PROTECTIONS = (
    "network isolation",
    "pid namespace",
    "ipc/uts namespaces",
    "private file system",
    "empty environment",
    "unprivileged uid",
    "process limit",
    "seccomp filter",
    "dies with parent",
)


class SandboxUnavailableError(RuntimeError):
    """No sandbox mode with the required protections works on this machine."""


@dataclass(frozen=True)
class SandboxConfig:
    """How untrusted code is run. Frozen and hashable: one shared pool exists per config and process.

    Limits apply to every job's child process; ``max_processes`` counts the extra processes or
    threads a job may create.
    """

    mode: str = "auto"  # "auto" | "bwrap" | "unshare" | "rlimit"
    require_full_sandbox: bool = False
    timeout: float = 5.0  # default wall-clock seconds per job
    memory_mb: int = 1024  # RLIMIT_AS per process
    max_processes: int = 4
    file_size_mb: int = 16  # RLIMIT_FSIZE: caps files and the captured stdout/stderr
    tmpfs_mb: int = 64  # size of the private /tmp in the namespace modes
    max_open_files: int = 64
    output_bytes: int = 4096  # head of the child's stdout/stderr kept for diagnostics
    max_result_bytes: int = 8 << 20  # all values one job may send back
    bwrap: str = "bwrap"
    unshare: str = "unshare"
    python: str | None = None  # interpreter to run inside; default: this one
    spawn_timeout: float = 20.0

    def __post_init__(self):
        if self.mode not in ("auto",) + MODES:
            raise ValueError(f"SandboxConfig.mode must be 'auto', 'bwrap', 'unshare' or 'rlimit', got {self.mode!r}")
        for name in ("timeout", "spawn_timeout"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0):
                raise ValueError(f"SandboxConfig.{name} must be a positive number, got {v!r}")
        for name in ("memory_mb", "max_processes", "file_size_mb", "tmpfs_mb", "max_open_files",
                     "output_bytes", "max_result_bytes"):
            v = getattr(self, name)
            if not (isinstance(v, int) and v > 0):
                raise ValueError(f"SandboxConfig.{name} must be a positive integer, got {v!r}")
        if self.max_open_files < 16:
            raise ValueError("SandboxConfig.max_open_files must be at least 16")

    @classmethod
    def coerce(cls, value) -> "SandboxConfig":
        """Accept a SandboxConfig, a dict of its fields, or None (defaults)."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            unknown = set(value) - {f.name for f in dataclasses.fields(cls)}
            if unknown:
                raise ValueError(f"unknown sandbox option(s): {sorted(unknown)}")
            return cls(**value)
        raise TypeError(f"sandbox must be a SandboxConfig or a dict, got {type(value).__name__}")


# ---------------------------------------------------------------------------------------------
# seccomp
# ---------------------------------------------------------------------------------------------

_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
# name: (x86_64, aarch64)
_DENIED = {
    "ptrace": (101, 117), "process_vm_readv": (310, 270), "process_vm_writev": (311, 271),
    "pidfd_getfd": (438, 438), "process_madvise": (440, 440), "kcmp": (312, 272),
    "mount": (165, 40), "umount2": (166, 39), "pivot_root": (155, 41), "chroot": (161, 51),
    "move_mount": (429, 429), "open_tree": (428, 428), "fsopen": (430, 430), "fsmount": (432, 432),
    "fspick": (433, 433), "mount_setattr": (442, 442), "unshare": (272, 97), "setns": (308, 268),
    "keyctl": (250, 219), "add_key": (248, 217), "request_key": (249, 218), "bpf": (321, 280),
    "perf_event_open": (298, 241), "userfaultfd": (323, 282), "io_uring_setup": (425, 425),
    "io_uring_enter": (426, 426), "io_uring_register": (427, 427), "kexec_load": (246, 104),
    "kexec_file_load": (320, 294), "init_module": (175, 105), "finit_module": (313, 273),
    "delete_module": (176, 106), "reboot": (169, 142), "swapon": (167, 224), "swapoff": (168, 225),
    "acct": (163, 89), "open_by_handle_at": (304, 265), "name_to_handle_at": (303, 264),
    "fanotify_init": (300, 262), "quotactl": (179, 60), "personality": (135, 92),
}
_SOCKET = (41, 198)
_CLONE = (56, 220)
_CLONE3 = (435, 435)
_PRLIMIT64 = (302, 261)
_NAMESPACE_FLAGS = 0x7E020000  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
_AF_UNIX = 1
_EPERM, _ENOSYS = 1, 38

_RET_ALLOW = 0x7FFF0000
_RET_KILL_PROCESS = 0x80000000
_LD_ABS_W, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06


def _errno(e):
    return 0x00050000 | e


def build_seccomp_filter(machine: str | None = None) -> bytes | None:
    """The classic-BPF program (``struct sock_filter[]`` bytes), or None on other architectures."""
    machine = machine or platform.machine()
    if machine not in _AUDIT_ARCH:
        return None
    col = 0 if machine == "x86_64" else 1
    ins = []

    def op(code, k, jt=0, jf=0):
        ins.append(struct.pack("=HBBI", code, jt, jf, k))

    op(_LD_ABS_W, 4)  # seccomp_data.arch
    op(_JEQ, _AUDIT_ARCH[machine], 1, 0)
    op(_RET, _RET_KILL_PROCESS)
    op(_LD_ABS_W, 0)  # seccomp_data.nr
    if machine == "x86_64":  # x32 ABI numbers would bypass the list below
        op(_JGE, 0x40000000, 0, 1)
        op(_RET, _errno(_EPERM))
    for nrs in _DENIED.values():
        op(_JEQ, nrs[col], 0, 1)
        op(_RET, _errno(_EPERM))
    op(_JEQ, _CLONE3[col], 0, 1)
    op(_RET, _errno(_ENOSYS))  # libc falls back to clone(), whose flags we can inspect
    # socket(domain, ...): only AF_UNIX
    op(_JEQ, _SOCKET[col], 0, 4)
    op(_LD_ABS_W, 16)  # args[0], low 32 bits (little-endian)
    op(_JEQ, _AF_UNIX, 0, 1)
    op(_RET, _RET_ALLOW)
    op(_RET, _errno(_EPERM))
    # clone(flags, ...): no new namespaces
    op(_JEQ, _CLONE[col], 0, 4)
    op(_LD_ABS_W, 16)
    op(_JSET, _NAMESPACE_FLAGS, 0, 1)
    op(_RET, _errno(_EPERM))
    op(_RET, _RET_ALLOW)
    # prlimit64(pid, ...): only on itself (pid 0), so a job cannot lower the server's limits
    op(_JEQ, _PRLIMIT64[col], 0, 5)
    op(_LD_ABS_W, 16)
    op(_JEQ, 0, 0, 2)
    op(_LD_ABS_W, 20)
    op(_JEQ, 0, 1, 0)
    op(_RET, _errno(_EPERM))
    op(_RET, _RET_ALLOW)
    return b"".join(ins)


# ---------------------------------------------------------------------------------------------
# Launch plans
# ---------------------------------------------------------------------------------------------

_SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin")
_UID_BASE = 1_800_000_000
_uid_counter = 0


def is_real_root() -> bool:
    """Root of the initial user namespace (not merely uid 0 inside a user namespace)."""
    if os.geteuid() != 0:
        return False
    try:
        with open("/proc/self/uid_map") as f:
            return f.read().split() == ["0", "0", "4294967295"]
    except OSError:
        return True


def next_sandbox_uid() -> int:
    """A fresh unprivileged uid for one sandbox server (only used when the trainer is root).

    Unique per process and server, so RLIMIT_NPROC counts only that server's processes."""
    global _uid_counter
    _uid_counter += 1
    return _UID_BASE + (os.getpid() % 1_000_000) * 256 + _uid_counter % 256


def python_executable(config: SandboxConfig) -> str:
    return os.path.realpath(config.python or sys.executable)


def read_only_dirs(config: SandboxConfig) -> list[str]:
    """Host directories bound read-only into the namespace modes: system dirs plus the interpreter's."""
    exe = python_executable(config)
    dirs = [d for d in _SYSTEM_DIRS if os.path.exists(d)]
    extra = [sys.base_prefix, sys.base_exec_prefix, os.path.dirname(os.path.dirname(exe))]
    if config.python:
        extra = [os.path.dirname(os.path.dirname(exe))]
    for d in extra:
        d = os.path.realpath(d)
        covered = any(d == b or d.startswith(b.rstrip("/") + "/") for b in dirs)
        if not covered and os.path.isdir(d) and d != "/":
            dirs.append(d)
    return dirs


def _ancestors(path: str) -> list[str]:
    out, p = [], os.path.dirname(path)
    while p not in ("/", ""):
        out.append(p)
        p = os.path.dirname(p)
    return out


def _world_readable(path: str) -> bool:
    """Whether a user with no relation to the owners can reach and list ``path``."""
    try:
        if os.stat(path).st_mode & 0o005 != 0o005:
            return False
        return all(os.stat(p).st_mode & 0o001 for p in _ancestors(path))
    except OSError:
        return False


def worker_source() -> str:
    from rftgym.envs.code import worker

    with open(worker.__file__, encoding="utf-8") as f:
        return f.read() + "\nmain()\n"


@dataclass
class LaunchPlan:
    argv: list[str]
    init: dict  # the worker's init config
    cwd: str | None = None


def _limits(config: SandboxConfig, nproc: int | None) -> dict:
    return {
        "as_bytes": config.memory_mb << 20,
        "fsize_bytes": config.file_size_mb << 20,
        "nofile": config.max_open_files,
        "nproc": nproc,
    }


def _base_init(config: SandboxConfig, workdir: str, kill_all: bool, seccomp: bytes | None) -> dict:
    return {
        "workdir": workdir,
        "kill_all": kill_all,
        "max_result_bytes": config.max_result_bytes,
        "output_bytes": config.output_bytes,
        "max_frame": 64 << 20,
        "seccomp": seccomp.hex() if seccomp else None,
        "pdeathsig": True,
    }


def plan_launch(mode: str, config: SandboxConfig, rlimit_dir: str | None = None) -> LaunchPlan:
    """The command line and worker config that start one sandbox server in ``mode``."""
    root = is_real_root()
    py = python_executable(config)
    src = worker_source()
    seccomp = build_seccomp_filter()
    # The job child plus max_processes more; a server runs under its own uid (root) or inside its
    # own user namespace (non-root), where it is the only other process of that uid.
    nproc = config.max_processes + 2
    uid = next_sandbox_uid() if root else None
    if mode == "bwrap":
        bwrap = shutil.which(config.bwrap) or config.bwrap
        argv = [bwrap, "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
                "--unshare-cgroup-try", "--die-with-parent", "--as-pid-1", "--new-session",
                "--clearenv", "--hostname", "sandbox"]
        if root:
            argv += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        else:
            argv += ["--unshare-user", "--uid", "1000", "--gid", "1000"]
        dirs = read_only_dirs(config)
        for d in dirs:
            argv += ["--ro-bind", d, d]
        # bubblewrap gives the mount points' parent dirs the host's modes (/root is 0700); inside
        # the sandbox they hold nothing but the way to the bound dirs, so open them up
        for parent in sorted({p for d in dirs for p in _ancestors(d)} - set(dirs)):
            argv += ["--chmod", "0755", parent]
        argv += ["--proc", "/proc", "--dev", "/dev",
                 "--size", str(config.tmpfs_mb << 20), "--tmpfs", "/tmp", "--chmod", "1777", "/tmp",
                 "--chdir", "/tmp", py, "-I", "-S", "-c", src]
        init = _base_init(config, "/tmp", True, seccomp)
        init.update(uid=uid, limits=_limits(config, nproc))
        return LaunchPlan(argv, init)
    if mode == "unshare":
        unshare = shutil.which(config.unshare) or config.unshare
        argv = [unshare]
        if not root:
            argv += ["--user", "--map-root-user"]
        argv += ["--mount", "--net", "--pid", "--ipc", "--uts", "--fork", "--kill-child",
                 "--", py, "-I", "-S", "-c", src]
        init = _base_init(config, "/tmp", True, seccomp)
        binds = [[d, d] for d in read_only_dirs(config)]
        # without root, the unshare process itself lives in the new user namespace and counts too
        init.update(uid=uid, limits=_limits(config, nproc if root else nproc + 1),
                    pivot={"binds": binds, "tmpfs_bytes": config.tmpfs_mb << 20})
        return LaunchPlan(argv, init)
    if mode == "rlimit":
        if rlimit_dir is None:
            raise ValueError("the rlimit mode needs a base directory for work dirs")
        workdir = os.path.join(rlimit_dir, f"w{uid if uid is not None else os.urandom(4).hex()}")
        init = _base_init(config, workdir, False, seccomp)
        # without a separate uid, RLIMIT_NPROC would count all of the trainer's processes
        init.update(uid=uid, limits=_limits(config, nproc if root else None), make_workdir=True)
        return LaunchPlan([py, "-I", "-S", "-c", src], init, cwd=rlimit_dir)
    raise ValueError(f"unknown sandbox mode {mode!r}")


def missing_protections(mode: str, root: bool | None = None, machine: str | None = None) -> list[str]:
    """Protections of the full sandbox that ``mode`` does not give on this machine."""
    root = is_real_root() if root is None else root
    has_seccomp = build_seccomp_filter(machine) is not None
    missing = []
    if mode == "rlimit":
        if not has_seccomp:
            missing.append("network isolation")
        missing += ["pid namespace", "ipc/uts namespaces", "private file system"]
        if not root:
            missing += ["unprivileged uid", "process limit"]
        elif not _world_readable(os.path.dirname(os.__file__)):
            # the per-sandbox uid cannot read this interpreter's standard library
            missing.append(f"standard library imports beyond the preloaded modules ({os.path.dirname(os.__file__)} "
                           "is not readable by other users)")
    if not has_seccomp:
        missing.append("seccomp filter")
    return missing


def describe(mode: str, missing: list[str]) -> str:
    """The one log line announcing the chosen mode."""
    who = "root: jobs run as a per-sandbox unprivileged uid" if is_real_root() else \
        "non-root: jobs run in a user namespace" if mode != "rlimit" else "non-root: jobs run as the trainer's uid"
    seccomp = "seccomp on" if build_seccomp_filter() else \
        f"seccomp unavailable on {platform.machine()} (filters exist for x86_64 and aarch64)"
    return (f"code sandbox mode={mode} ({who}; {seccomp}); "
            f"missing protections: {', '.join(missing) if missing else 'none'}")
