"""Evaluations per second of the rft/JSONSchema-v0 grader.

Usage: python benchmarks/json_eval.py [--replies 3000] [--json]

Replies are built from the generated test split, in five kinds a model produces: the exact
object (raw JSON), the object in a fenced block with prose around it, a partly wrong object
(a field dropped, a value changed, list items shuffled, an extra key), an empty object, and
prose with no JSON. Measured: one process scoring them one by one, two worker processes (the
CPU-bound case uses processes), the group vector env with a thread pool and with a process pool,
and the worst-case latency of hostile replies (10 MB, 10,000 nesting levels, 3,000-item arrays).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

import rftgym
from rftgym.envs.json_schema import grade, json_schema_evaluator, make_dataset

KINDS = ("exact", "fenced", "partly wrong", "empty object", "no JSON")


def perturb(value: dict, rng: random.Random) -> dict:
    """A partly wrong copy: one field dropped, one leaf changed, lists shuffled, an extra key."""
    value = copy.deepcopy(value)
    keys = list(value)
    value.pop(rng.choice(keys[1:]), None)
    for key, item in value.items():
        if isinstance(item, list):
            rng.shuffle(item)
        elif isinstance(item, str):
            value[key] = item.upper() if rng.random() < 0.5 else item + " x"
            break
        elif isinstance(item, (int, float)) and not isinstance(item, bool):
            value[key] = item + 1
            break
    value["comment"] = "extracted automatically"
    return value


def make_replies(rows, n: int, seed: int = 0) -> list[tuple[str, dict]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        row = rows[i % len(rows)]
        truth = row["ground_truth"]
        kind = KINDS[i % len(KINDS)]
        text = {"exact": lambda: json.dumps(truth),
                "fenced": lambda: f"Here you go:\n```json\n{json.dumps(truth, indent=2)}\n```",
                "partly wrong": lambda: json.dumps(perturb(truth, rng)),
                "empty object": lambda: "{}",
                "no JSON": lambda: "I am sorry, I cannot find the requested information in the text."}[kind]()
        out.append((kind, text, row))
    return out


def _score_chunk(chunk):
    return [json_schema_evaluator([{"role": "assistant", "content": text}], row["ground_truth"],
                                  schema=row["schema"]).score for _, text, row in chunk]


def sequential(replies) -> dict:
    times = {kind: [] for kind in KINDS}
    start = time.perf_counter()
    for kind, text, row in replies:
        t0 = time.perf_counter()
        json_schema_evaluator([{"role": "assistant", "content": text}], row["ground_truth"], schema=row["schema"])
        times[kind].append(time.perf_counter() - t0)
    total = time.perf_counter() - start
    return {"replies_per_s": len(replies) / total,
            "mean_ms_by_kind": {k: 1000 * statistics.mean(v) for k, v in times.items()}}


def two_processes(replies) -> float:
    chunks = [replies[i::8] for i in range(8)]
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_score_chunk, [replies[:20]] * 2))  # warm up: imports and validator caches
        start = time.perf_counter()
        list(pool.map(_score_chunk, chunks))
        return len(replies) / (time.perf_counter() - start)


def group_env(executor: str, steps: int) -> float:
    envs = rftgym.make_group_env("rft/JSONSchema-v0", num_prompts=8, group_size=8, executor=executor,
                                 max_workers=2 if executor == "process" else None, split="test")
    rng = random.Random(1)
    try:
        count, elapsed = 0, 0.0
        for step in range(steps + 1):
            _, infos = envs.reset(seed=step)
            actions = []
            for member, info in enumerate(infos):
                truth = envs.envs[member].dataset[info["index"]]["ground_truth"]
                actions.append([json.dumps(truth), json.dumps(perturb(truth, rng)), "{}", "no json"][member % 4])
            start = time.perf_counter()
            envs.step(actions)
            if step:  # the first step warms the pool
                elapsed += time.perf_counter() - start
                count += len(actions)
        return count / elapsed
    finally:
        envs.close()


def hostile_latency() -> dict:
    row = make_dataset("test", domains=["receipt"], size=1)[0]
    cases = {
        "10 MB of JSON": json.dumps({"x": "y" * 10_000_000}),
        "10,000 nesting levels": "[" * 10_000 + "]" * 10_000,
        "2,000-item order-insensitive array": json.dumps(
            {**row["ground_truth"], "items": [{"name": str(i), "quantity": i + 1, "line_total": 1}
                                              for i in range(2000)]}, separators=(",", ":")),
        "truncated": json.dumps(row["ground_truth"])[:-15],
        "NaN / duplicate keys": '{"a": NaN, "a": 1}',
    }
    out = {}
    for name, text in cases.items():
        start = time.perf_counter()
        result = grade(text, row["schema"], row["ground_truth"])
        out[name] = {"ms": 1000 * (time.perf_counter() - start), "score": round(result.score, 4),
                     "reason": result.reason[:70]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", type=int, default=3000)
    parser.add_argument("--group-steps", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of markdown")
    args = parser.parse_args()

    rows = make_dataset("test")
    replies = make_replies(rows, args.replies)
    sequential(replies[:200])  # warm the validator cache
    results = {"replies": args.replies, "cpus": os.cpu_count(), "sequential": sequential(replies),
               "two_processes_per_s": two_processes(replies),
               "group_thread_per_s": group_env("thread", args.group_steps),
               "group_process_per_s": group_env("process", args.group_steps),
               "hostile": hostile_latency()}
    if args.json:
        print(json.dumps(results, indent=2))
        return
    seq = results["sequential"]["replies_per_s"]
    print(f"| how | replies/s | ratio |\n|---|---|---|\n| one process, one by one | {seq:,.0f} | 1x |")
    for label, key in (("2 worker processes (`ProcessPoolExecutor`)", "two_processes_per_s"),
                       ("`make_group_env`, 8x8, thread pool", "group_thread_per_s"),
                       ("`make_group_env`, 8x8, 2 processes", "group_process_per_s")):
        print(f"| {label} | {results[key]:,.0f} | {results[key] / seq:.2f}x |")
    print("\n| reply kind | mean ms (one process) |\n|---|---|")
    for kind, ms in seq_kinds(results):
        print(f"| {kind} | {ms:.3f} |")
    print("\n| hostile reply | ms | score | reason |\n|---|---|---|---|")
    for name, item in results["hostile"].items():
        print(f"| {name} | {item['ms']:.1f} | {item['score']} | {item['reason']} |")


def seq_kinds(results):
    return results["sequential"]["mean_ms_by_kind"].items()


if __name__ == "__main__":
    main()
