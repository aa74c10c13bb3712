"""LoRA adapters for the decoder's projections.

The LoRA tree mirrors the param tree (stacked over layers) with an `a` [L, in, r] and a `b`
[L, r, out] per adapted projection, always fp32:

    {"layers": {"self_attn": {"q_proj": {"a": ..., "b": ...}, ...}, "mlp": {"gate_proj": {...}, ...}}}

`model.forward(..., lora=tree, lora_scale=cfg.scale)` adds `scale * dropout(x) @ a @ b` to each
adapted projection; `lora=None` runs the frozen base weights alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from .config import ModelConfig
from .model import LORA_TARGETS, linear_shapes


@dataclass(frozen=True)
class LoraConfig:
    """Rank, alpha (scale = alpha / rank), dropout on the adapter input, and target projections."""

    rank: int = 16
    alpha: float = 32.0
    dropout: float = 0.0
    targets: tuple[str, ...] = ("q", "k", "v", "o", "gate", "up", "down")

    def __post_init__(self):
        object.__setattr__(self, "targets", tuple(self.targets))
        if not isinstance(self.rank, int) or self.rank <= 0:
            raise ValueError(f"LoRA rank must be a positive integer, got {self.rank!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"LoRA dropout must be in [0, 1), got {self.dropout!r}")
        unknown = [t for t in self.targets if t not in LORA_TARGETS]
        if unknown or not self.targets:
            raise ValueError(f"unknown LoRA targets {unknown or self.targets!r}; choose from {list(LORA_TARGETS)}")
        if len(set(self.targets)) != len(self.targets):
            raise ValueError(f"duplicate LoRA targets in {self.targets!r}")

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    @property
    def hf_target_modules(self) -> list[str]:
        """HF module names of the targets (q -> q_proj, gate -> gate_proj, ...)."""
        return [LORA_TARGETS[t][1] for t in self.targets]


def init_lora(cfg: ModelConfig, lora_cfg: LoraConfig, key) -> dict:
    """Fresh adapters: `a` ~ U(-1/sqrt(in), 1/sqrt(in)) as in PEFT, `b` = 0 (so step 0 is the base model)."""
    shapes = linear_shapes(cfg)
    keys = jax.random.split(key, len(lora_cfg.targets))
    tree: dict = {}
    for k, name in zip(keys, lora_cfg.targets):
        fan_in, fan_out = shapes[name]
        block, module = LORA_TARGETS[name]
        bound = 1.0 / fan_in**0.5
        tree.setdefault(block, {})[module] = {
            "a": jax.random.uniform(k, (cfg.num_layers, fan_in, lora_cfg.rank), jnp.float32, -bound, bound),
            "b": jnp.zeros((cfg.num_layers, lora_cfg.rank, fan_out), jnp.float32),
        }
    return {"layers": tree}


def lora_delta(entry: dict, scale: float):
    """scale * a @ b as an [L, in, out] fp32 kernel update."""
    return scale * jnp.einsum("lir,lro->lio", entry["a"], entry["b"], precision=jax.lax.Precision.HIGHEST)


def merge_lora(params: dict, lora: dict, lora_cfg: LoraConfig) -> dict:
    """Base params with the adapters folded into the kernels (in fp32, cast back to each kernel's dtype)."""
    layers = dict(params["layers"])
    for block, modules in lora["layers"].items():
        new_block = dict(layers[block])
        for module, entry in modules.items():
            kernel = new_block[module]["kernel"]
            merged = kernel.astype(jnp.float32) + lora_delta(entry, lora_cfg.scale)
            new_block[module] = {**new_block[module], "kernel": merged.astype(kernel.dtype)}
        layers[block] = new_block
    return {**params, "layers": layers}


def lora_num_params(lora: dict) -> int:
    """Number of trainable adapter parameters."""
    return sum(x.size for x in jax.tree.leaves(lora))
