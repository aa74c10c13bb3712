"""Evaluation: pass@1 of a policy on an environment's held-out rows (``rftgym eval``).

A model to evaluate is one of:
    * a base model: the embedded default name, a local HF folder, a .gguf file or a hub id;
    * a training run directory (``RUN_DIR`` with ``config.json`` and ``checkpoints/``): its
      base model with the LoRA adapters of the latest checkpoint;
    * an exported folder (``rftgym export``): a merged HF folder loads as a base model, a PEFT
      adapter folder loads its base model plus the adapter.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

CORRECT = 1.0 - 1e-6  # a score this high counts as a solved task for `accuracy`


def evaluate_groups(worker, groups, lora, key, *, limit: int = 100, batch_size: int = 32,
                    temperature: float = 0.0, max_new_tokens: int = 64,
                    indices: Sequence[int] | None = None) -> tuple[dict[str, Any], list[dict]]:
    """Play rows 0..limit-1 (or `indices`) of one env once each; returns (summary, per-row results).

    summary: n, reward (mean score), accuracy (fraction scoring 1), reply_length, truncated_frac,
    turns and the mean of every evaluator metric (``metrics/<name>``).
    """
    import jax

    from .rollout import SamplingSettings

    if indices is None:
        n = groups.size if not limit else min(limit, groups.size)
        indices = list(range(n))
    settings = SamplingSettings(max_new_tokens=max_new_tokens, temperature=temperature)
    episodes = []
    # equal chunks (100 rows at batch 32 -> 4 x 25): one padded batch shape, one compilation
    n_chunks = max(1, -(-len(indices) // batch_size))
    size = -(-len(indices) // n_chunks)
    for start in range(0, len(indices), size):
        chunk = indices[start:start + size]
        eps, _ = worker.run([groups], [(0, i) for i in chunk], 1, lora, jax.random.fold_in(key, start),
                            settings, reset_seed=start)
        episodes.extend(eps)
    rewards = np.array([e.reward for e in episodes], np.float64)
    summary: dict[str, Any] = {
        "n": len(episodes),
        "reward": float(rewards.mean()) if len(rewards) else 0.0,
        "accuracy": float((rewards >= CORRECT).mean()) if len(rewards) else 0.0,
        "reply_length": float(np.mean([e.generated for e in episodes])) if episodes else 0.0,
        "truncated_frac": float(np.mean([e.truncated for e in episodes])) if episodes else 0.0,
        "turns": float(np.mean([e.turns for e in episodes])) if episodes else 0.0,
    }
    sums: dict[str, list[float]] = {}
    for e in episodes:
        for k, v in (e.evaluation.get("metrics") or {}).items():
            if isinstance(v, (int, float)) and np.isfinite(v):
                sums.setdefault(k, []).append(float(v))
    for k, vals in sorted(sums.items()):
        summary[f"metrics/{k}"] = float(np.mean(vals))
    rows = [{"row": e.row, "reward": e.reward, "replies": e.replies,
             "reason": (e.evaluation or {}).get("reason", "")} for e in episodes]
    return summary, rows


# ----------------------------------------------------------------------------- loading a policy


@dataclass
class Policy:
    """A base model plus optional LoRA adapters, ready to sample."""

    model: Any  # loading.LoadedModel
    lora: Any
    lora_scale: float
    description: str
    lora_cfg: Any = None  # lora.LoraConfig when adapters are loaded
    base_name: str = ""  # how the base model was named (run config / adapter config)


def _is_run_dir(path: str) -> bool:
    return os.path.isdir(os.path.join(path, "checkpoints")) and os.path.isfile(os.path.join(path, "config.json"))


def load_policy(name_or_path: str, dtype: str = "float32") -> Policy:
    """Load a base model, a run directory's latest checkpoint or an exported folder."""
    from .loading import load_model

    if os.path.isdir(name_or_path) and _is_run_dir(name_or_path):
        return _load_run(name_or_path)
    if os.path.isdir(name_or_path) and os.path.isfile(os.path.join(name_or_path, "adapter_config.json")):
        return _load_adapter(name_or_path, dtype)
    model = load_model(name_or_path, dtype=dtype)
    return Policy(model, None, 1.0, f"base model {name_or_path}", None, name_or_path)


def _load_run(run_dir: str) -> Policy:
    import dataclasses

    from .checkpoint import Checkpointer, lora_shapes
    from .loading import load_model
    from .lora import LoraConfig
    from .train_config import TrainConfig

    cfg = TrainConfig.from_file(os.path.join(run_dir, "config.json"))
    model = load_model(cfg.model, dtype=cfg.dtype)
    lora_cfg = LoraConfig(rank=cfg.lora_rank, alpha=cfg.lora_alpha, targets=tuple(cfg.lora_targets))
    ckpt = Checkpointer(run_dir, read_only=True)
    try:
        lora, meta = ckpt.restore_lora()
    finally:
        ckpt.close()
    saved = meta["fingerprint"]
    if saved["model_config"] != dataclasses.asdict(model.cfg):
        from .checkpoint import CheckpointMismatchError

        raise CheckpointMismatchError(f"{run_dir}: the checkpoint does not match its base model {cfg.model!r}")
    assert lora_shapes(lora) == saved["lora_shapes"]
    return Policy(model, lora, lora_cfg.scale, f"{run_dir} (step {meta['step']}, base {cfg.model})", lora_cfg,
                  cfg.model)


def _load_adapter(folder: str, dtype: str) -> Policy:
    """A PEFT LoRA adapter folder (as `rftgym export --adapter` writes) on its base model."""
    import re

    import jax.numpy as jnp

    from .loading import SafetensorsFile, load_model
    from .lora import LoraConfig
    from .model import LORA_TARGETS

    with open(os.path.join(folder, "adapter_config.json")) as f:
        config = json.load(f)
    if config.get("peft_type", "LORA") != "LORA":
        raise ValueError(f"{folder}: only LoRA adapters are supported, got peft_type={config.get('peft_type')!r}")
    base = config.get("base_model_name_or_path")
    if not base:
        raise ValueError(f"{folder}/adapter_config.json names no base_model_name_or_path")
    model = load_model(base, dtype=dtype)
    weights = SafetensorsFile(os.path.join(folder, "adapter_model.safetensors"))
    pattern = re.compile(r"(?:base_model\.model\.)?model\.layers\.(\d+)\.(self_attn|mlp)\.(\w+)\.lora_([AB])\.weight")
    found: dict = {}
    for name in weights.keys():
        m = pattern.fullmatch(name)
        if m is None:
            raise ValueError(f"{folder}: unexpected adapter tensor {name!r}")
        layer, block, module, which = int(m.group(1)), m.group(2), m.group(3), m.group(4)
        found.setdefault((block, module), {}).setdefault(which, {})[layer] = np.asarray(weights.get(name), np.float32).T
    lora: dict = {"layers": {}}
    for (block, module), parts in found.items():
        entry = {}
        for which, key in (("A", "a"), ("B", "b")):
            layers = parts.get(which, {})
            if sorted(layers) != list(range(model.cfg.num_layers)):
                raise ValueError(f"{folder}: {module} lora_{which} does not cover all {model.cfg.num_layers} layers")
            entry[key] = jnp.asarray(np.stack([layers[i] for i in range(model.cfg.num_layers)]))
        lora["layers"].setdefault(block, {})[module] = entry
    short = {module: t for t, (_, module) in LORA_TARGETS.items()}
    lora_cfg = LoraConfig(rank=int(config["r"]), alpha=float(config["lora_alpha"]),
                          targets=tuple(short[m] for (_, m) in sorted(found)))
    return Policy(model, lora, lora_cfg.scale, f"adapter {folder} on {base}", lora_cfg, base)


def export_run(run_dir: str, out: str, mode: str = "merged") -> str:
    """Export the latest checkpoint of `run_dir` (``merged`` HF folder or PEFT ``adapter``)."""
    from . import export

    if not (os.path.isdir(run_dir) and _is_run_dir(run_dir)):
        raise FileNotFoundError(f"{run_dir} is not a training run directory (config.json + checkpoints/)")
    policy = _load_run(run_dir)
    if mode == "merged":
        return export.export_merged(policy.model, policy.lora, policy.lora_cfg, out)
    if mode == "adapter":
        base = policy.model.source_dir or policy.base_name
        return export.export_adapter(policy.model.cfg, policy.lora, policy.lora_cfg, out, base,
                                     tokenizer=policy.model.tokenizer)
    raise ValueError(f"export mode must be 'merged' or 'adapter', got {mode!r}")


# ----------------------------------------------------------------------------- CLI entry


def run_eval(env_specs, model: str, *, limit: int = 100, batch_size: int = 32, temperature: float = 0.0,
             max_new_tokens: int = 64, max_prompt_len: int = 512, seed: int = 0, split: str | None = None,
             as_json: bool = False, out=None, samples_path: str | None = None) -> dict[str, Any]:
    """Evaluate `model` on each env spec; prints a table (or one JSON line) and returns the results.

    `samples_path`: also write one JSON line per scored row (env, row, reward, replies, reason).
    """
    import jax

    from .rollout import ChatEncoder, EnvGroups, RolloutWorker, eval_kwargs_for, make_executor
    from .sampler import Sampler

    out = out or sys.stdout
    policy = load_policy(model)
    encoder = ChatEncoder(policy.model.tokenizer, max_prompt_len)
    # later turns of multi-turn episodes are longer prompts than the first one
    sampler = Sampler(policy.model.cfg, policy.model.tokenizer, max_prompt_len=max_prompt_len + 16 * max_new_tokens)
    worker = RolloutWorker(encoder, sampler, policy.model.params, lora_scale=policy.lora_scale)
    executor = make_executor("thread")
    results: dict[str, Any] = {"model": policy.description, "envs": {}}
    samples = open(samples_path, "w") if samples_path else None
    try:
        for spec in env_specs:
            if split is not None:
                kwargs = {**spec.kwargs, "split": split}
            else:
                kwargs, held_out = eval_kwargs_for(spec)
                if not held_out:
                    print(f"note: {spec.id} has no test split; scoring its rows as given", file=sys.stderr)
            groups = EnvGroups(spec.id, kwargs, 1, executor)
            try:
                summary, rows = evaluate_groups(worker, groups, policy.lora, jax.random.key(seed), limit=limit,
                                             batch_size=batch_size, temperature=temperature,
                                             max_new_tokens=max_new_tokens)
            finally:
                groups.close()
            results["envs"][spec.id] = summary
            if samples is not None:
                samples.writelines(json.dumps({"env": spec.id, **row}) + "\n" for row in rows)
                samples.flush()
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
        if samples is not None:
            samples.close()
    if as_json:
        out.write(json.dumps(results) + "\n")
    else:
        out.write(format_table(results) + "\n")
    return results


def format_table(results: dict[str, Any]) -> str:
    lines = [f"model: {results['model']}"]
    header = f"{'env':<28} {'n':>5} {'reward':>8} {'accuracy':>9} {'len':>7} {'trunc':>6}"
    lines += [header, "-" * len(header)]
    for env_id, s in results["envs"].items():
        lines.append(f"{env_id:<28} {s['n']:>5} {s['reward']:>8.3f} {s['accuracy']:>9.3f} "
                     f"{s['reply_length']:>7.1f} {s['truncated_frac']:>6.2f}")
        for k, v in s.items():
            if k.startswith("metrics/"):
                lines.append(f"  {k[8:]:<26} {'':>5} {v:>8.3f}")
    return "\n".join(lines)
