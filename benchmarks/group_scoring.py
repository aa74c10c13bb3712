"""Scoring a batch of replies: one by one vs the group vector env's worker pool.

Usage: python benchmarks/group_scoring.py [--replies 64] [--sleep 0.1] [--json]

The evaluator sleeps ``--sleep`` seconds per reply (a stand-in for a slow grader such as code
execution). Sequential scoring takes replies x sleep; the pool should take a small fraction.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

import rftgym  # noqa: E402
from rftgym import TextEnv  # noqa: E402


def rows(n):
    return [{"messages": [{"role": "user", "content": f"Reply with w{i}"}], "ground_truth": f"w{i}"} for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", type=int, default=64)
    parser.add_argument("--sleep", type=float, default=0.1)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from core_evaluators import slow_exact_word  # sleeps 0.1 s per call

    data = rows(args.replies // args.group_size)
    sequential_env = TextEnv(data, slow_exact_word)
    start = time.perf_counter()
    for i in range(args.replies):
        sequential_env.reset(options={"index": i % len(data)})
        sequential_env.step("w0")
    sequential = time.perf_counter() - start

    results = {"replies": args.replies, "evaluator_sleep_s": args.sleep, "sequential_s": round(sequential, 3)}
    for executor in ("thread", "process"):
        envs = rftgym.make_group_env("rft/Custom-v0", num_prompts=args.replies // args.group_size,
                                     group_size=args.group_size, executor=executor, dataset=data,
                                     evaluator="core_evaluators:slow_exact_word")
        obs, _ = envs.reset(seed=0)
        if executor == "process":  # warm the worker processes once
            envs.step(["w"] * envs.num_envs)
            obs, _ = envs.reset(seed=0)
        start = time.perf_counter()
        envs.step(["w0"] * envs.num_envs)
        results[f"{executor}_pool_s"] = round(time.perf_counter() - start, 3)
        results[f"{executor}_workers"] = envs.pool._max_workers
        envs.close()
    results["speedup_thread"] = round(sequential / results["thread_pool_s"], 1)
    if args.json:
        print(json.dumps(results))
    else:
        for key, value in results.items():
            print(f"{key:>20}: {value}")


if __name__ == "__main__":
    main()
