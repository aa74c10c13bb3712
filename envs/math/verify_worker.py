"""The math-verify worker process: reads JSON requests on stdin, writes one JSON line per answer.

Started by ``rftgym.envs.math.symbolic``; the parent kills it when a check runs past its time
limit. It imports nothing from rftgym. Protocol::

    -> {"gold": "\\\\frac{1}{2}", "pred": "0.5", "cpu": 5}
    <- {"equal": true}        or  {"error": "..."}

Safeguards of its own, for when the parent cannot act: a CPU-time limit per request (the kernel
kills the process with SIGXCPU), an address-space limit, and exit when the parent goes away.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import sys
import threading
import time


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(0)


def _wrap(text: str) -> str:
    if "$" in text or "\\boxed" in text or "\\(" in text or "\\[" in text:
        return text
    return f"${text}$"


def main() -> None:
    parent = os.getppid()
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    out = sys.stdout
    try:
        logging.disable(logging.WARNING)  # math-verify warns that its own timeouts are off
        from math_verify import parse, verify

        verify(parse("$x^2$", parsing_timeout=None), parse("$x \\cdot x$", parsing_timeout=None),
               timeout_seconds=None)  # warm up the LaTeX parser
    except Exception as exc:  # reported to the parent, which names it in its error
        out.write(json.dumps({"fatal": f"cannot use math-verify: {type(exc).__name__}: {exc}"}) + "\n")
        out.flush()
        return
    memory_mb = int(os.environ.get("RFTGYM_VERIFY_MEMORY_MB", "2048"))
    if memory_mb > 0:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    _, cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        try:
            request = json.loads(line)
            usage = resource.getrusage(resource.RUSAGE_SELF)
            budget = int(usage.ru_utime + usage.ru_stime) + 1 + int(request.get("cpu", 10))
            if cpu_hard == resource.RLIM_INFINITY or budget < cpu_hard:
                resource.setrlimit(resource.RLIMIT_CPU, (budget, cpu_hard))
            gold = parse(_wrap(request["gold"]), parsing_timeout=None)
            if not gold:
                reply = {"error": "math-verify could not parse the expected answer"}
            else:
                pred = parse(_wrap(request["pred"]), parsing_timeout=None)
                if not pred:
                    reply = {"equal": False, "detail": "math-verify could not parse the answer"}
                else:
                    reply = {"equal": bool(verify(gold, pred, timeout_seconds=None))}
        except MemoryError:
            reply = {"error": "math-verify ran out of memory"}
        except Exception as exc:  # any failure is "no verdict" for the parent
            reply = {"error": f"math-verify raised {type(exc).__name__}: {str(exc)[:200]}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
