"""Sampling throughput: rftgym's JAX sampler vs transformers `generate` (torch CPU), side by side.

Same model (SmolLM2-135M-Instruct, fp32, the embedded default), same chat prompts, same settings
(temperature 1.0, no top-k/top-p, EOS ignored so every row generates exactly N tokens). Each
measurement runs in its own subprocess so peak RSS is per side. A third column runs our sampler
with the weights cast to bf16 for decoding (`Sampler(decode_dtype="bfloat16")`, fp32 accumulation).
transformers runs with torch's default threads or one thread, whichever a short probe finds
faster (on a shared machine, busy-waiting threads can make the default many times slower).

    python benchmarks/sampling.py            # batch 8 and 32 x 64 and 256 new tokens
    python benchmarks/sampling.py --quick    # batch 8 x 64 only
    python benchmarks/sampling.py --json     # ... and end with one JSON line (batch 8 / 64 tokens)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

QUESTIONS = [
    "What is 17 + 25?",
    "Name three animals that live in the ocean.",
    "Explain in one sentence why the sky is blue.",
    "Write a short poem about autumn leaves falling in a quiet park.",
    "What is the capital of Japan, and what is it famous for?",
    "Give me a tip for learning a new language quickly.",
    "Sum the numbers 3, 8 and 12, then explain each step of your reasoning.",
    "Translate 'good morning' into French and Spanish.",
]
MATMUL_GFLOPS = 180.0  # measured JAX fp32 2048x2048 matmul on this machine (2 cores)


def _prompts(tokenizer, batch):
    rows = []
    for i in range(batch):
        chat = [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}]
        ids = tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=True)
        rows.append(list(ids["input_ids"] if hasattr(ids, "keys") else ids))
    return rows


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_ours(batch, new_tokens, repeats, decode_dtype=None):
    import jax

    from rftgym.trainers.loading import EMBEDDED_DEFAULT, load_model
    from rftgym.trainers.sampler import Sampler

    lm = load_model(EMBEDDED_DEFAULT)
    prompts = _prompts(lm.tokenizer, batch)
    sampler = Sampler(lm.cfg, lm.tokenizer, max_prompt_len=128, decode_dtype=decode_dtype)
    kw = dict(max_new_tokens=new_tokens, temperature=1.0, ignore_eos=True)
    t0 = time.perf_counter()
    out = sampler.generate(lm.params, prompts, key=jax.random.PRNGKey(0), **kw)
    first = time.perf_counter() - t0
    runs = []
    for r in range(repeats):
        t0 = time.perf_counter()
        out = sampler.generate(lm.params, prompts, key=jax.random.PRNGKey(r + 1), **kw)
        runs.append((time.perf_counter() - t0, out.stats["prefill_s"], out.stats["decode_s"]))
    wall, prefill, decode = min(runs)
    tokens = int(out.completion_mask.sum())
    return {"tokens": tokens, "wall_s": wall, "prefill_s": prefill, "decode_s": decode,
            "compile_s": max(first - wall, 0.0), "peak_rss_mb": _peak_rss_mb(),
            "params": lm.cfg.num_params(), "sample": out.texts[0][:80]}


def run_transformers(batch, new_tokens, repeats):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rftgym.trainers.loading import embedded_default_dir

    folder = embedded_default_dir()
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    prompts = _prompts(tok, batch)
    width = max(map(len, prompts))
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    kw = dict(attention_mask=mask, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
              max_new_tokens=new_tokens, min_new_tokens=new_tokens, pad_token_id=pad)
    short = {**kw, "max_new_tokens": 8, "min_new_tokens": 8}
    # torch's default threads busy-wait and can run many times slower when other processes share
    # the cores: probe default vs one thread on a short run and keep the faster
    probe = {}
    with torch.no_grad():
        for threads in (torch.get_num_threads(), 1):
            torch.set_num_threads(threads)
            model.generate(ids, **short)  # warm-up
            t0 = time.perf_counter()
            model.generate(ids, **short)
            probe[threads] = time.perf_counter() - t0
        threads = min(probe, key=probe.get)
        torch.set_num_threads(threads)
        runs = []
        for r in range(repeats):
            torch.manual_seed(r)
            t0 = time.perf_counter()
            out = model.generate(ids, **kw)
            runs.append(time.perf_counter() - t0)
    tokens = int((out[:, width:] >= 0).sum())
    return {"tokens": tokens, "wall_s": min(runs), "peak_rss_mb": _peak_rss_mb(), "torch_threads": threads,
            "probe_tokens_per_s": {t: round(batch * 8 / s, 1) for t, s in probe.items()}}


def _child(side, batch, new_tokens, repeats):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", side, "--batch", str(batch),
           "--new-tokens", str(new_tokens), "--repeats", str(repeats)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{side} benchmark failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="only batch 8 x 64 new tokens")
    ap.add_argument("--json", action="store_true", help="end with one JSON line of the batch-8/64 result")
    ap.add_argument("--repeats", type=int, default=2, help="timed runs per setting (best is kept)")
    ap.add_argument("--child", choices=["ours", "ours_bf16", "transformers"], help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=8, help=argparse.SUPPRESS)
    ap.add_argument("--new-tokens", type=int, default=64, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        if args.child == "transformers":
            res = run_transformers(args.batch, args.new_tokens, args.repeats)
        else:
            res = run_ours(args.batch, args.new_tokens, args.repeats,
                           decode_dtype="bfloat16" if args.child == "ours_bf16" else None)
        print(json.dumps(res))
        return

    settings = [(8, 64)] if args.quick else [(8, 64), (8, 256), (32, 64), (32, 256)]
    results = []
    print("| batch | new tokens | ours tok/s | transformers tok/s (threads) | ratio | ours decode tok/s | prefill share "
          "| compile s | roofline tok/s (ours' share) | ours peak RSS MB | transformers peak RSS MB "
          "| ours, bf16 decode weights: tok/s (ratio) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for batch, new_tokens in settings:
        ours = _child("ours", batch, new_tokens, args.repeats)
        ours_bf16 = _child("ours_bf16", batch, new_tokens, args.repeats)
        ref = _child("transformers", batch, new_tokens, args.repeats)
        bf16_tps = ours_bf16["tokens"] / ours_bf16["wall_s"]
        ours_tps = ours["tokens"] / ours["wall_s"]
        ref_tps = ref["tokens"] / ref["wall_s"]
        roofline = MATMUL_GFLOPS * 1e9 / (2 * ours["params"])
        row = {"batch": batch, "new_tokens": new_tokens, "ours_tokens_per_s": round(ours_tps, 1),
               "transformers_tokens_per_s": round(ref_tps, 1), "ratio": round(ours_tps / ref_tps, 2),
               "ours_decode_tokens_per_s": round(ours["tokens"] / ours["decode_s"], 1),
               "prefill_share": round(ours["prefill_s"] / (ours["prefill_s"] + ours["decode_s"]), 3),
               "compile_s": round(ours["compile_s"], 1), "roofline_tokens_per_s": round(roofline, 1),
               "fraction_of_roofline": round(ours_tps / roofline, 3),
               "ours_peak_rss_mb": round(ours["peak_rss_mb"]), "transformers_peak_rss_mb": round(ref["peak_rss_mb"]),
               "torch_threads": ref["torch_threads"], "transformers_probe_tokens_per_s_by_threads": ref["probe_tokens_per_s"],
               "ours_bf16_tokens_per_s": round(bf16_tps, 1),
               "ours_bf16_ratio": round(bf16_tps / ref_tps, 2)}
        results.append(row)
        print(f"| {batch} | {new_tokens} | {row['ours_tokens_per_s']} | {row['transformers_tokens_per_s']} "
              f"({row['torch_threads']}) | "
              f"{row['ratio']}x | {row['ours_decode_tokens_per_s']} | {row['prefill_share']:.1%} | "
              f"{row['compile_s']} | {row['roofline_tokens_per_s']} ({row['fraction_of_roofline']:.0%}) | "
              f"{row['ours_peak_rss_mb']} | {row['transformers_peak_rss_mb']} | "
              f"{row['ours_bf16_tokens_per_s']} ({row['ours_bf16_ratio']}x) |", flush=True)
    if args.json:
        head = results[0]
        print(json.dumps({**head, "all": results}))


if __name__ == "__main__":
    main()
