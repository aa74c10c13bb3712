"""``rftgym plot RUN_DIR``: training curves as one PNG (train and eval reward, KL, reply length)."""

from __future__ import annotations

import json
import os
from typing import Any


def read_jsonl(path: str) -> list[dict[str, Any]]:
    """Records of a JSONL file (a line cut short by a kill is skipped)."""
    if not os.path.exists(path):
        return []
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def _smooth(values: list[float], window: int) -> list[float]:
    out, acc = [], []
    for v in values:
        acc.append(v)
        if len(acc) > window:
            acc.pop(0)
        out.append(sum(acc) / len(acc))
    return out


def plot_run(run_dir: str, out: str | None = None, smooth: int = 5) -> str:
    """Write the curves of `run_dir` to `out` (default RUN_DIR/curves.png); returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = read_jsonl(os.path.join(run_dir, "metrics.jsonl"))
    evals = read_jsonl(os.path.join(run_dir, "eval.jsonl"))
    if not metrics and not evals:
        raise FileNotFoundError(f"{run_dir} has no metrics.jsonl or eval.jsonl to plot")
    out = out or os.path.join(run_dir, "curves.png")
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    steps = [m["step"] for m in metrics]

    ax = axes[0][0]
    if metrics:
        reward = [m.get("reward", float("nan")) for m in metrics]
        ax.plot(steps, reward, color="tab:blue", alpha=0.3, label="per step")
        ax.plot(steps, _smooth(reward, smooth), color="tab:blue", label=f"mean of {smooth}")
        for key in sorted({k for m in metrics for k in m if k.startswith("reward/")}):
            vals = [m.get(key, float("nan")) for m in metrics]
            ax.plot(steps, _smooth(vals, smooth), label=key[7:])
    ax.set_title("train reward")
    ax.set_xlabel("step")
    ax.legend(fontsize=8)

    ax = axes[0][1]
    for env in sorted({e["env"] for e in evals}):
        rows = [e for e in evals if e["env"] == env]
        ax.plot([e["step"] for e in rows], [e["reward"] for e in rows], marker="o", label=f"{env} reward")
        if any(e.get("accuracy") != e.get("reward") for e in rows):
            ax.plot([e["step"] for e in rows], [e["accuracy"] for e in rows], marker="x", linestyle="--",
                    label=f"{env} accuracy")
    ax.set_title("held-out reward (pass@1)")
    ax.set_xlabel("step")
    if evals:
        ax.legend(fontsize=8)

    ax = axes[1][0]
    if any("kl" in m for m in metrics):
        ax.plot([m["step"] for m in metrics if "kl" in m], [m["kl"] for m in metrics if "kl" in m],
                color="tab:red")
        ax.set_title("KL to the base model")
    else:
        ax.plot(steps, [m.get("entropy", float("nan")) for m in metrics], color="tab:purple")
        ax.set_title("entropy (KL not logged: beta = 0)")
    ax.set_xlabel("step")

    ax = axes[1][1]
    if metrics:
        ax.plot(steps, [m.get("reply_length", float("nan")) for m in metrics], label="mean")
        ax.plot(steps, [m.get("reply_length_max", float("nan")) for m in metrics], alpha=0.5, label="max")
        ax.legend(fontsize=8)
    ax.set_title("reply length (tokens)")
    ax.set_xlabel("step")

    fig.suptitle(os.path.basename(os.path.abspath(run_dir)))
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
