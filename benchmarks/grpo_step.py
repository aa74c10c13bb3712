"""GRPO step time and reward curve: rftgym's JAX trainer vs TRL's GRPOTrainer, same setup.

Setup (both): SmolLM2-135M-Instruct in fp32 (the same HF folder), LoRA r=16 alpha=32 on
q/k/v/o/gate/up/down, 4 prompts x 8 replies per step, replies up to 64 tokens at --temperature,
loss `dapo`, beta 0, one update per batch, constant learning rate, the same prompts in the same
order (rft/Math-v0 level 1) and the same reward (rft/Math-v0's evaluator: 1 for a correct
<answer>, else 0). Step 1 (compilation / warm-up) is left out of the medians.

TRL runs in its own virtual environment, so the library never depends on it:

    python -m venv --system-site-packages ~/.cache/rftgym/trl-venv
    ~/.cache/rftgym/trl-venv/bin/pip install trl datasets
    python benchmarks/grpo_step.py --steps 12 --temperature 0.7 --impl ours ours-bf16 trl

Writes a JSON file with per-step times and rewards for each implementation and prints a
markdown summary.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

PROMPTS, GROUP, NEW_TOKENS, RANK, ALPHA = 4, 8, 64, 16, 32.0
IMPLS = ["ours", "ours-noskip", "ours-bf16", "ours-bf16-weights", "ours-bf16-weights-noskip", "trl", "trl-bf16"]
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def build_rows(steps: int, seed: int) -> list[dict]:
    """The prompts of every step, in order: rft/Math-v0 level-1 training rows as the env serves them."""
    import numpy as np

    from rftgym.envs.math.env import MathEnv

    env = MathEnv(split="train", difficulty=1)
    order = np.random.default_rng(seed).permutation(len(env.dataset))[: steps * PROMPTS]
    rows = []
    for i in order:
        messages, _ = env.reset(options={"index": int(i)})
        rows.append({"messages": messages, "ground_truth": env.dataset[int(i)]["ground_truth"]})
    return rows


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


# ----------------------------------------------------------------------------- ours


def run_ours(rows: list[dict], lr: float, microbatch: int, out: str, temperature: float = 1.0,
             sample_dtype: str | None = None, dtype: str = "float32", skip: bool = True) -> None:
    from rftgym.trainers.train import Trainer
    from rftgym.trainers.train_config import TrainConfig

    steps = len(rows) // PROMPTS
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "rows.jsonl")
        with open(data, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
        cfg = TrainConfig(envs=[{"id": "rft/Math-v0", "kwargs": {"dataset": data}}], run_dir=os.path.join(tmp, "run"),
                          steps=steps, prompts_per_step=PROMPTS, group_size=GROUP, max_new_tokens=NEW_TOKENS,
                          temperature=temperature, sample_dtype=sample_dtype, dtype=dtype, learning_rate=lr, lora_rank=RANK, lora_alpha=ALPHA, loss_type="dapo",
                          beta=0.0, microbatch_size=microbatch, progress=False, log_samples_every=0,
                          shuffle_data=False,  # rows in file order, as TRL with shuffle_dataset=False
                          skip_zero_advantage=skip)
        trainer = Trainer(cfg)
        records = []
        for _ in range(steps):
            m = trainer.train_one_step()
            records.append({"step": trainer.step, "time_s": m["time_step_s"], "sample_s": m["time_sample_s"],
                            "score_s": m["time_score_s"], "update_s": m["time_update_s"], "reward": m["reward"],
                            "tokens": m["tokens_generated"], "reply_length": m["reply_length"],
                            "update_frac": m.get("update_microbatches_frac", 1.0)})
            print(json.dumps(records[-1]), flush=True)
        trainer.close()
    with open(out, "w") as f:
        json.dump({"impl": "rftgym" + (f"-{sample_dtype}-sampling" if sample_dtype else "") + (f"-{dtype}" if dtype != "float32" else "")
                   + ("" if skip else "-noskip"), "steps": records,
                   "peak_rss_gib": peak_rss_gib()}, f)


# ----------------------------------------------------------------------------- TRL


def run_trl(rows: list[dict], lr: float, model_dir: str, out: str, temperature: float = 1.0,
            bf16: bool = False) -> None:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from rftgym import evaluate_safely
    from rftgym.envs.math.env import MathEnv

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    evaluator = MathEnv(split="train", difficulty=1).evaluator
    steps = len(rows) // PROMPTS

    def math_reward(prompts, completions, ground_truth, **_):
        return [evaluate_safely(evaluator, p + c, gt, {}, 30.0).score
                for p, c, gt in zip(prompts, completions, ground_truth)]

    class Timer(TrainerCallback):
        def __init__(self):
            self.records, self.t0 = [], None

        def on_step_begin(self, args, state, control, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            self.records.append({"step": state.global_step, "time_s": time.perf_counter() - self.t0})

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "reward" in logs and self.records:
                self.records[-1]["reward"] = logs["reward"]
                self.records[-1]["reply_length"] = logs.get("completions/mean_length")
                print(json.dumps(self.records[-1]), flush=True)

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    # bf16: bf16 base weights (PEFT keeps the adapters in fp32) and bf16 autocast, as ours-bf16-weights
    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.bfloat16 if bf16 else torch.float32)
    dataset = Dataset.from_list([{"prompt": r["messages"], "ground_truth": r["ground_truth"]} for r in rows])
    with tempfile.TemporaryDirectory() as tmp:
        args = GRPOConfig(output_dir=tmp, max_steps=steps, per_device_train_batch_size=PROMPTS * GROUP,
                          gradient_accumulation_steps=1, num_generations=GROUP, max_completion_length=NEW_TOKENS,
                          temperature=temperature, learning_rate=lr, lr_scheduler_type="constant", warmup_steps=0,
                          beta=0.0, loss_type="dapo", num_iterations=1, shuffle_dataset=False,
                          gradient_checkpointing=True, use_cpu=True, bf16=bf16, logging_steps=1,
                          report_to="none", save_strategy="no", seed=0, dataloader_num_workers=0)
        timer = Timer()
        trainer = GRPOTrainer(model=model, reward_funcs=math_reward, args=args, train_dataset=dataset,
                              processing_class=tokenizer, callbacks=[timer],
                              peft_config=LoraConfig(r=RANK, lora_alpha=int(ALPHA), lora_dropout=0.0,
                                                     target_modules=TARGETS, task_type="CAUSAL_LM"))
        trainer.train()
    with open(out, "w") as f:
        json.dump({"impl": "trl-bf16" if bf16 else "trl", "steps": timer.records, "peak_rss_gib": peak_rss_gib()}, f)


# ----------------------------------------------------------------------------- driver


def summarize(result: dict) -> dict:
    times = [r["time_s"] for r in result["steps"][1:]]
    rewards = [r.get("reward", float("nan")) for r in result["steps"]]
    out = {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
           "rewards": rewards, "mean_reward": statistics.fmean(rewards), "peak_rss_gib": result["peak_rss_gib"]}
    for key in ("sample_s", "update_s", "update_frac"):  # rftgym's own breakdown
        values = [r[key] for r in result["steps"][1:] if key in r]
        if values:
            out[f"median_{key}"] = statistics.median(values) if key != "update_frac" else statistics.fmean(values)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--impl", nargs="+", choices=IMPLS, default=["ours", "trl"],
                        help="ours-bf16: rftgym sampling with bf16 weights (sample_dtype), update in fp32; "
                             "-noskip: groups whose advantages are all 0 still run through the update; "
                             "ours-bf16-weights: bf16 base weights for sampling and update (dtype), fp32 LoRA; "
                             "trl-bf16: TRL with bf16 base weights and bf16 autocast")
    parser.add_argument("--temperature", type=float, default=1.0, help="sampling temperature for both")
    parser.add_argument("--lr", type=float, default=5e-4, help="the same constant learning rate for both")
    parser.add_argument("--microbatch", type=int, default=8, help="rftgym microbatch rows (8 = one group)")
    parser.add_argument("--trl-python", default=os.path.expanduser("~/.cache/rftgym/trl-venv/bin/python"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/grpo_step.json")
    parser.add_argument("--worker", choices=IMPLS,
                        help=argparse.SUPPRESS)
    parser.add_argument("--rows", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        with open(args.rows) as f:
            rows = json.load(f)
        if args.worker.startswith("ours"):
            run_ours(rows, args.lr, args.microbatch, args.result, args.temperature,
                     "bfloat16" if args.worker == "ours-bf16" else None,
                     "bfloat16" if args.worker.startswith("ours-bf16-weights") else "float32",
                     skip=not args.worker.endswith("-noskip"))
        else:
            from rftgym.trainers.loading import embedded_default_dir

            run_trl(rows, args.lr, embedded_default_dir(), args.result, args.temperature, args.worker == "trl-bf16")
        return

    rows = build_rows(args.steps, args.seed)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        rows_path = os.path.join(tmp, "rows.json")
        with open(rows_path, "w") as f:
            json.dump(rows, f)
        for impl in args.impl:
            python = args.trl_python if impl.startswith("trl") else sys.executable
            if impl.startswith("trl") and not os.path.exists(python):
                sys.exit(f"TRL's python {python} not found: create the venv as the docstring says")
            result_path = os.path.join(tmp, f"{impl}.json")
            cmd = [python, os.path.abspath(__file__), "--worker", impl, "--rows", rows_path, "--result", result_path,
                   "--lr", str(args.lr), "--microbatch", str(args.microbatch), "--temperature", str(args.temperature)]
            print(f"== {impl}: {' '.join(cmd)}", flush=True)
            subprocess.run(cmd, check=True)
            with open(result_path) as f:
                results[impl] = json.load(f)
    summary = {impl: summarize(r) for impl, r in results.items()}
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        config = {k: v for k, v in vars(args).items() if k not in ("worker", "rows", "result")}
        config["trl_python"] = config["trl_python"].replace(os.path.expanduser("~"), "~", 1)
        json.dump({"config": config, "results": results, "summary": summary}, f, indent=1)
    print("\n| implementation | median s/step | min | max | mean reward | peak RSS GiB |")
    print("|---|---|---|---|---|---|")
    for impl, s in summary.items():
        print(f"| {impl} | {s['median_s']:.1f} | {s['min_s']:.1f} | {s['max_s']:.1f} | {s['mean_reward']:.3f} "
              f"| {s['peak_rss_gib']:.1f} |")
    for impl in summary:
        for base in ("trl", "trl-bf16"):
            if not impl.startswith("trl") and base in summary:
                print(f"speed-up of {impl} over {base}: {summary[base]['median_s'] / summary[impl]['median_s']:.2f}x")
    plot_curves(results, os.path.splitext(args.out)[0] + ".png")


def plot_curves(results: dict, path: str) -> None:
    """Per-step train reward and seconds per step of each implementation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    names = {"ours": "rftgym (JAX)", "ours-noskip": "rftgym, no skipping", "ours-bf16": "rftgym, bf16 sampling",
             "ours-bf16-weights": "rftgym, bf16 base weights",
             "ours-bf16-weights-noskip": "rftgym, bf16 base weights, no skipping",
             "trl": "TRL GRPOTrainer", "trl-bf16": "TRL GRPOTrainer, bf16"}
    for impl, result in results.items():
        steps = [r["step"] for r in result["steps"]]
        left.plot(steps, [r.get("reward", float("nan")) for r in result["steps"]], marker="o", label=names[impl])
        right.plot(steps, [r["time_s"] for r in result["steps"]], marker="o", label=names[impl])
    left.set(title="train reward per step", xlabel="step", ylim=(-0.02, 1.02))
    right.set(title="seconds per step", xlabel="step")
    right.set_ylim(bottom=0)
    left.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"curves: {path}")


if __name__ == "__main__":
    main()
