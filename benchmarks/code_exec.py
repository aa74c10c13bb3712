"""Sandboxed code execution throughput: the warm pool against fresh-process-per-job baselines.

Workload: HumanEval-sized test runs - each job is one HumanEval problem's canonical solution
(prompt + body) called on that problem's test inputs (about 7 calls; the 158 problems whose
checks split into cases, cycled). Every configuration uses both cores.

  warm pool          SandboxPool (default: bubblewrap, every protection on), one server per core,
                     a forked child per job; measured end to end through the grader (values
                     judged in the parent) and as raw jobs.
  fresh sandbox      a new bubblewrap sandbox + interpreter per job with the same protections
                     (namespaces, uid, rlimits, seccomp), running a one-shot runner.
  fresh python       a new `python -I -S` per job with rlimits, no namespaces (the usual approach).

A second workload, "light", calls a one-line function on 10 inputs (sandbox overhead only).
The machine may be shared: besides wall-clock rates the script reports the CPU time of all
processes involved per run (this process plus every reaped sandbox process), and the capacity it
implies on idle cores (cores / CPU per run), which depends far less on other load.

Usage: python benchmarks/code_exec.py [--jobs 2000] [--fresh-jobs 200]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import resource
import subprocess
import sys
import time

from rftgym.envs.code import sandbox as sb
from rftgym.envs.code.grader import CodeTask, grade_program
from rftgym.envs.code.humaneval import load_problems
from rftgym.envs.code.pool import Job, SandboxPool, _ResultStream
from rftgym.envs.code.worker import encode_value


def workload(kind="humaneval"):
    """(program, CodeTask) pairs: HumanEval canonical solutions with their split-out test cases, or
    a light workload of one small function called on 10 inputs."""
    if kind == "light":
        task = CodeTask.from_row({"tests": [{"args": [i, i + 1], "expected": 2 * i + 1} for i in range(10)]},
                                 {"entry_point": "add"})
        return [("def add(a, b):\n    return a + b\n", task)]
    out = []
    for p in load_problems():
        task = CodeTask.from_row({"check": p["test"]}, p)
        if task.tests.check is None:
            out.append((p["prompt"] + p["canonical_solution"], task))
    return out


def rate(n, seconds):
    return n / seconds if seconds > 0 else float("inf")


def cpu_seconds():
    """CPU time of this process plus every reaped descendant (sandbox servers, their job children)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def bench_pool(items, n_jobs, cores):
    """(mode, raw runs/s, graded runs/s, CPU seconds per graded run incl. every sandbox process)."""
    jobs = [Job(items[i % len(items)][0], items[i % len(items)][1].entry_point,
                [c.args for c in items[i % len(items)][1].tests.cases]) for i in range(n_jobs)]
    with SandboxPool(sb.SandboxConfig(require_full_sandbox=True), size=cores) as pool:
        pool.warm_up()
        pool.run_many(jobs[:50])  # warm
        t = time.perf_counter()
        results = pool.run_many(jobs)
        raw = time.perf_counter() - t
        assert all(r.loaded and all(c is not None and c.ok for c in r.calls) for r in results)
        mode = pool.mode

    def graded(pool, i):
        prog, task = items[i % len(items)]
        return grade_program(prog, task, pool).score

    cpu0 = cpu_seconds()
    with SandboxPool(sb.SandboxConfig(require_full_sandbox=True), size=cores) as pool:
        pool.warm_up()
        t = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(cores) as ex:
            scores = list(ex.map(lambda i: graded(pool, i), range(n_jobs)))
        full = time.perf_counter() - t
    cpu = cpu_seconds() - cpu0  # the pool's servers exited and were reaped: their CPU is counted
    assert all(s == 1.0 for s in scores), "a canonical solution failed"
    return mode, rate(n_jobs, raw), rate(n_jobs, full), cpu / n_jobs


_ONESHOT = r"""
def _oneshot():
    import json, os, resource
    job = json.loads(os.read(0, 1 << 24))
    uid = job["uid"]
    if uid is not None and os.geteuid() == 0:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    _clear_capabilities()
    for res, val in ((resource.RLIMIT_AS, job["limits"]["as_bytes"]), (resource.RLIMIT_CPU, 7),
                     (resource.RLIMIT_FSIZE, job["limits"]["fsize_bytes"]), (resource.RLIMIT_NOFILE, 64),
                     (resource.RLIMIT_NPROC, job["limits"]["nproc"])):
        resource.setrlimit(res, (val, val))
    if job["seccomp"]:
        install_seccomp(bytes.fromhex(job["seccomp"]))
    os.dup2(1, 3)
    _run_candidate(job)
_oneshot()
"""


def bench_fresh_sandbox(items, n_jobs, cores):
    """A new bubblewrap sandbox per job (same namespaces, uid, rlimits, seccomp), one-shot runner."""
    cfg = sb.SandboxConfig()
    src = sb.worker_source().replace("\nmain()\n", "\n") + _ONESHOT

    def one(i):
        prog, task = items[i % len(items)]
        plan = sb.plan_launch("bwrap", cfg)
        argv = plan.argv[:-1] + [src]
        job = {"program": prog, "entry_point": task.entry_point, "uid": plan.init["uid"],
               "limits": plan.init["limits"], "seccomp": plan.init["seccomp"],
               "calls": [encode_value(tuple(c.args)) for c in task.tests.cases]}
        out = subprocess.run(argv, input=json.dumps(job).encode(), capture_output=True, timeout=10, env={})
        stream = _ResultStream(len(task.tests.cases), 1 << 24)
        stream.feed(out.stdout)
        return all(stream.calls.get(k) is not None and stream.calls[k].ok and case.passes(stream.calls[k].value)
                   for k, case in enumerate(task.tests.cases))

    cpu0, t = cpu_seconds(), time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(cores) as ex:
        ok = list(ex.map(one, range(n_jobs)))
    assert all(ok)
    return rate(n_jobs, time.perf_counter() - t), (cpu_seconds() - cpu0) / n_jobs


_RUNNER = r"""
import json, sys
from rftgym_codec import encode_value, decode_value
job = json.loads(sys.stdin.read())
ns = {"__name__": "solution"}
exec(compile(job["program"], "solution.py", "exec"), ns)
fn = ns[job["entry_point"]]
out = []
for a in job["calls"]:
    try:
        out.append(["v", encode_value(fn(*decode_value(a)))])
    except Exception as e:
        out.append(["e", repr(e)])
sys.stdout.write(json.dumps(out))
"""


def bench_fresh_python(items, n_jobs, cores, workdir):
    # the codec module the runner imports, written next to it
    from rftgym.envs.code import worker

    with open(os.path.join(workdir, "rftgym_codec.py"), "w") as f:
        f.write(open(worker.__file__).read())

    def limits():
        for res, val in ((resource.RLIMIT_AS, 1 << 30), (resource.RLIMIT_CPU, 7), (resource.RLIMIT_FSIZE, 16 << 20),
                         (resource.RLIMIT_NOFILE, 64), (resource.RLIMIT_NPROC, 4096)):
            resource.setrlimit(res, (val, val))

    def one(i):
        prog, task = items[i % len(items)]
        job = {"program": prog, "entry_point": task.entry_point,
               "calls": [encode_value(tuple(c.args)) for c in task.tests.cases]}
        out = subprocess.run([sys.executable, "-I", "-S", "-c", _RUNNER.replace("from rftgym_codec", "import sys as _s; _s.path.insert(0, '.')\nfrom rftgym_codec")],
                             input=json.dumps(job), capture_output=True, text=True, timeout=10, cwd=workdir,
                             env={}, preexec_fn=limits)
        from rftgym.envs.code.worker import decode_value
        vals = json.loads(out.stdout)
        return all(k == "v" and case.passes(decode_value(v)) for (k, v), case in zip(vals, task.tests.cases))

    cpu0, t = cpu_seconds(), time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(cores) as ex:
        ok = list(ex.map(one, range(n_jobs)))
    assert all(ok)
    return rate(n_jobs, time.perf_counter() - t), (cpu_seconds() - cpu0) / n_jobs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2000)
    ap.add_argument("--fresh-jobs", type=int, default=200)
    args = ap.parse_args()
    import tempfile

    cores = len(os.sched_getaffinity(0))
    print(f"machine: {platform.machine()}, {cores} cores, Python {platform.python_version()}")
    for kind in ("humaneval", "light"):
        items = workload(kind)
        load_before = os.getloadavg()
        mode, raw, graded, pool_cpu = bench_pool(items, args.jobs, cores)
        fresh_sb, fresh_sb_cpu = bench_fresh_sandbox(items, args.fresh_jobs, cores)
        with tempfile.TemporaryDirectory() as d:
            fresh_py, fresh_py_cpu = bench_fresh_python(items, args.fresh_jobs, cores, d)
        load_after = os.getloadavg()
        calls = sum(len(t.tests.cases) for _, t in items) / len(items)
        what = (f"{len(items)} HumanEval canonical solutions" if kind == "humaneval" else "one-line function")
        print(f"\nworkload {kind}: {what}, {calls:.1f} test calls per run; sandbox mode {mode}; "
              f"load average before/after {load_before[0]:.2f}/{load_after[0]:.2f}\n")
        print(f"| configuration | measured runs/s | CPU ms per run (all processes) | capacity on "
              f"{cores} idle cores, runs/s | capacity vs fresh python |")
        print("|---|---:|---:|---:|---:|")
        rows = [(f"warm pool, graded end to end ({args.jobs} runs)", graded, pool_cpu),
                (f"warm pool, raw jobs ({args.jobs} runs)", raw, None),
                (f"fresh sandbox per job ({args.fresh_jobs} runs)", fresh_sb, fresh_sb_cpu),
                (f"fresh python per job, rlimits only ({args.fresh_jobs} runs)", fresh_py, fresh_py_cpu)]
        for name, measured, cpu in rows:
            if cpu is None:
                print(f"| {name} | {measured:.0f} | - | - | - |")
            else:
                cap = cores / cpu
                print(f"| {name} | {measured:.0f} | {cpu * 1000:.2f} | {cap:.0f} | {cap / (cores / fresh_py_cpu):.1f}x |")


if __name__ == "__main__":
    main()
