"""Model configuration: the architecture facts the JAX decoder needs, read from a HF config.json."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass

# HF model_type -> (our architecture name, HF class name)
_ARCHITECTURES = {
    "llama": ("llama", "LlamaForCausalLM"),
    "qwen2": ("qwen2", "Qwen2ForCausalLM"),
    "qwen3": ("qwen3", "Qwen3ForCausalLM"),
}
_HF_CLASS = {arch: cls for arch, cls in _ARCHITECTURES.values()}
_SUPPORTED_ROPE_TYPES = ("default", "linear", "llama3")


@dataclass(frozen=True)
class ModelConfig:
    """Shape and numerics of a Llama / Qwen2 / Qwen3 decoder.

    Build it with `ModelConfig.from_hf(json.load(open("config.json")))`; `to_hf()` gives a
    config.json that transformers loads back into the same model.
    """

    architecture: str  # "llama" | "qwen2" | "qwen3"
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rope_theta: float = 10000.0
    rope_scaling: dict | None = None  # {"rope_type": "llama3" | "linear", "factor": ..., ...}
    rms_norm_eps: float = 1e-6
    tie_word_embeddings: bool = False
    attention_bias: bool = False  # q/k/v projections carry a bias (Qwen2)
    qk_norm: bool = False  # RMSNorm over head_dim on q and k before RoPE (Qwen3)
    max_position_embeddings: int = 2048
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None
    pad_token_id: int | None = None

    def __post_init__(self):
        if self.architecture not in _HF_CLASS:
            raise ValueError(
                f"unsupported architecture {self.architecture!r}; supported: {sorted(_HF_CLASS)}"
            )
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"num_heads ({self.num_heads}) must be a multiple of num_kv_heads ({self.num_kv_heads})"
            )
        if self.head_dim % 2:
            raise ValueError(f"head_dim must be even for rotary embeddings, got {self.head_dim}")
        if self.rope_scaling is not None:
            rope_type = self.rope_scaling.get("rope_type", "default")
            if rope_type not in _SUPPORTED_ROPE_TYPES:
                raise ValueError(
                    f"unsupported rope scaling type {rope_type!r}; supported: {_SUPPORTED_ROPE_TYPES}"
                )

    def __hash__(self):  # dict / list fields made hashable so the config can be a jit static arg
        def freeze(v):
            if isinstance(v, dict):
                return tuple(sorted((k, freeze(x)) for k, x in v.items()))
            if isinstance(v, list):
                return tuple(v)
            return v

        return hash(tuple(freeze(getattr(self, f.name)) for f in dataclasses.fields(self)))

    @property
    def eos_token_ids(self) -> tuple[int, ...]:
        """The end-of-sequence ids as a tuple (config.json allows one id or a list)."""
        if self.eos_token_id is None:
            return ()
        if isinstance(self.eos_token_id, int):
            return (self.eos_token_id,)
        return tuple(self.eos_token_id)

    def num_params(self) -> int:
        """Number of parameters (embeddings counted once when tied)."""
        h, d = self.hidden_size, self.head_dim
        attn = h * d * (self.num_heads + 2 * self.num_kv_heads) + self.num_heads * d * h
        if self.attention_bias:
            attn += d * (self.num_heads + 2 * self.num_kv_heads)
        if self.qk_norm:
            attn += 2 * d
        layer = attn + 3 * h * self.intermediate_size + 2 * h
        head = 0 if self.tie_word_embeddings else h * self.vocab_size
        return self.vocab_size * h + self.num_layers * layer + h + head

    @classmethod
    def from_hf(cls, hf_config: dict) -> "ModelConfig":
        """Read a HF config.json dict (transformers 4.x `rope_theta`/`rope_scaling` or 5.x `rope_parameters`)."""
        model_type = hf_config.get("model_type")
        if model_type not in _ARCHITECTURES:
            raise ValueError(
                f"unsupported model_type {model_type!r} in config.json; supported: "
                f"{sorted(_ARCHITECTURES)} (Llama 2/3, SmolLM, Qwen2/2.5, Qwen3)"
            )
        architecture = _ARCHITECTURES[model_type][0]
        act = hf_config.get("hidden_act", "silu")
        if act != "silu":
            raise ValueError(f"unsupported hidden_act {act!r}; only 'silu' (SwiGLU) is implemented")
        if hf_config.get("mlp_bias"):
            raise ValueError("mlp_bias=True is not supported")
        if hf_config.get("use_sliding_window"):
            raise ValueError("sliding-window attention (use_sliding_window=True) is not supported")

        def need(key):
            if key not in hf_config:
                raise ValueError(f"config.json is missing required key {key!r}")
            return hf_config[key]

        hidden = int(need("hidden_size"))
        heads = int(need("num_attention_heads"))
        rope_theta, rope_scaling = _read_rope(hf_config)
        if architecture == "qwen2":
            attention_bias = True
        else:
            attention_bias = bool(hf_config.get("attention_bias", False))
        tie_default = False
        return cls(
            architecture=architecture,
            vocab_size=int(need("vocab_size")),
            hidden_size=hidden,
            intermediate_size=int(need("intermediate_size")),
            num_layers=int(need("num_hidden_layers")),
            num_heads=heads,
            num_kv_heads=int(hf_config.get("num_key_value_heads") or heads),
            head_dim=int(hf_config.get("head_dim") or hidden // heads),
            rope_theta=float(rope_theta),
            rope_scaling=rope_scaling,
            rms_norm_eps=float(hf_config.get("rms_norm_eps", 1e-6)),
            tie_word_embeddings=bool(hf_config.get("tie_word_embeddings", tie_default)),
            attention_bias=attention_bias,
            qk_norm=architecture == "qwen3",
            max_position_embeddings=int(hf_config.get("max_position_embeddings", 2048)),
            bos_token_id=hf_config.get("bos_token_id"),
            eos_token_id=hf_config.get("eos_token_id"),
            pad_token_id=hf_config.get("pad_token_id"),
        )

    @classmethod
    def from_json_file(cls, path: str) -> "ModelConfig":
        """Read a config.json file (or a folder holding one)."""
        if os.path.isdir(path):
            path = os.path.join(path, "config.json")
        with open(path) as f:
            return cls.from_hf(json.load(f))

    def to_hf(self, torch_dtype: str = "float32") -> dict:
        """A config.json dict that transformers (4.x and 5.x) loads as this model."""
        out = {
            "architectures": [_HF_CLASS[self.architecture]],
            "model_type": self.architecture,
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads,
            "num_key_value_heads": self.num_kv_heads,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "max_position_embeddings": self.max_position_embeddings,
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "rope_scaling": dict(self.rope_scaling) if self.rope_scaling else None,
            "tie_word_embeddings": self.tie_word_embeddings,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "pad_token_id": self.pad_token_id,
            "use_cache": True,
            "torch_dtype": torch_dtype,
        }
        if self.architecture == "llama":
            out.update(attention_bias=self.attention_bias, mlp_bias=False)
        elif self.architecture == "qwen3":
            out.update(attention_bias=self.attention_bias, use_sliding_window=False)
        else:
            out.update(use_sliding_window=False)
        if self.rope_scaling and "type" not in out["rope_scaling"]:
            out["rope_scaling"]["type"] = out["rope_scaling"].get("rope_type", "default")
        return out

    def replace(self, **changes) -> "ModelConfig":
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


def _read_rope(hf_config: dict) -> tuple[float, dict | None]:
    """(theta, scaling dict or None) from either config.json style."""
    params = hf_config.get("rope_parameters")
    if isinstance(params, dict) and params:
        if "rope_type" not in params and all(isinstance(v, dict) for v in params.values()):
            raise ValueError("per-layer-type rope_parameters are not supported")
        theta = params.get("rope_theta", hf_config.get("rope_theta", 10000.0))
        scaling = {k: v for k, v in params.items() if k != "rope_theta"}
    else:
        theta = hf_config.get("rope_theta", 10000.0)
        scaling = dict(hf_config.get("rope_scaling") or {})
    if "type" in scaling and "rope_type" not in scaling:
        scaling["rope_type"] = scaling["type"]
    scaling.pop("type", None)
    if scaling.get("rope_type", "default") == "default":
        return theta, None
    if scaling.get("partial_rotary_factor", 1.0) != 1.0:
        raise ValueError("partial_rotary_factor != 1 is not supported")
    return theta, scaling
