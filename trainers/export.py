"""Export for deployment: a merged HF folder, or a PEFT LoRA adapter folder.

* `export_merged` folds LoRA into the base weights and writes config.json, (sharded)
  safetensors, tokenizer files with the chat template and generation_config.json: a folder
  `transformers.AutoModelForCausalLM.from_pretrained` (or vLLM) loads as a plain model.
* `export_adapter` writes adapter_config.json + adapter_model.safetensors with PEFT's key names
  and [out, in] layouts, loadable by `peft.PeftModel.from_pretrained(base, dir)` and vLLM's
  LoRA loader.
"""

from __future__ import annotations

import json
import os
import re

import jax
import numpy as np

from .config import ModelConfig
from .loading import LoadedModel, _np_dtype, hf_tensor_layout, write_safetensors
from .lora import LoraConfig, merge_lora
from .model import LORA_TARGETS

_DTYPE_NAMES = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}


def parse_size(size) -> int:
    """Bytes from an int or a string like "2GB", "500MB", "100KB" (decimal units, as transformers)."""
    if isinstance(size, int):
        return size
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?I?B)\s*", str(size).upper())
    if not m:
        raise ValueError(f"cannot parse size {size!r}; use e.g. '2GB', '500MB' or a number of bytes")
    units = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
             "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}
    return int(float(m.group(1)) * units[m.group(2)])


def hf_state_dict(cfg: ModelConfig, params: dict, dtype=None):
    """Yield (HF tensor name, numpy array in HF [out, in] layout) for every tensor of the model."""
    target = _np_dtype(dtype) if dtype is not None else None
    host: dict[tuple, np.ndarray] = {}
    for t in hf_tensor_layout(cfg):
        if t.path not in host:
            node = params
            for key in t.path:
                node = node[key]
            host[t.path] = np.asarray(jax.device_get(node))
        arr = host[t.path]
        if t.layer is not None:
            arr = arr[t.layer]
        if t.transpose:
            arr = arr.T
        arr = np.ascontiguousarray(arr.astype(target, copy=False) if target is not None else arr)
        yield t.hf_name, arr


def _source_parts(model, params, tokenizer):
    if isinstance(model, LoadedModel):
        return model.cfg, params if params is not None else model.params, \
            tokenizer if tokenizer is not None else model.tokenizer, model.generation_config
    if isinstance(model, ModelConfig):
        if params is None:
            raise ValueError("export needs params when given a ModelConfig (pass params=...)")
        return model, params, tokenizer, None
    raise TypeError(f"expected a LoadedModel or a ModelConfig, got {type(model).__name__}")


def export_merged(model, lora=None, lora_cfg: LoraConfig | None = None, out_dir: str = "", *, params=None,
                  tokenizer=None, max_shard_size="5GB", dtype=None, generation_config: dict | None = None) -> str:
    """Write base params with LoRA folded in as a HF model folder. Returns out_dir.

    model: a LoadedModel (its params/tokenizer are used unless `params`/`tokenizer` are given) or
    a ModelConfig (then `params` is required). `lora=None` exports the base weights. `dtype`:
    the saved weight dtype ("float32" | "bfloat16" | "float16"; default the params' dtype).
    Weights above `max_shard_size` are split into model-0000i-of-0000n.safetensors files plus
    model.safetensors.index.json.
    """
    cfg, params, tokenizer, gen = _source_parts(model, params, tokenizer)
    if not out_dir:
        raise ValueError("out_dir is required")
    if lora is not None:
        if lora_cfg is None:
            raise ValueError("lora_cfg is required with lora (its alpha / rank sets the scale)")
        params = merge_lora(params, lora, lora_cfg)
    if dtype is None:
        dtype = np.dtype(jax.tree.leaves(params)[0].dtype).name
    dtype_name = _np_dtype(dtype).name
    limit = parse_size(max_shard_size)
    os.makedirs(out_dir, exist_ok=True)
    _remove_old_weights(out_dir)

    shards: list[dict[str, np.ndarray]] = [{}]
    sizes = [0]
    tmp_names = []
    total = 0

    def flush():
        name = f".shard-{len(tmp_names):05d}.safetensors.tmp"
        write_safetensors(os.path.join(out_dir, name), shards[-1], {"format": "pt"})
        tmp_names.append((name, list(shards[-1])))
        shards[-1], sizes[-1] = {}, 0

    for name, arr in hf_state_dict(cfg, params, dtype_name):
        if sizes[-1] and sizes[-1] + arr.nbytes > limit:
            flush()
        shards[-1][name] = arr
        sizes[-1] += arr.nbytes
        total += arr.nbytes
    if shards[-1]:
        flush()
    n = len(tmp_names)
    if n == 1:
        os.replace(os.path.join(out_dir, tmp_names[0][0]), os.path.join(out_dir, "model.safetensors"))
    else:
        weight_map = {}
        for i, (tmp, names) in enumerate(tmp_names):
            final = f"model-{i + 1:05d}-of-{n:05d}.safetensors"
            os.replace(os.path.join(out_dir, tmp), os.path.join(out_dir, final))
            weight_map.update({k: final for k in names})
        with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)

    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg.to_hf(torch_dtype=_DTYPE_NAMES[dtype_name]), f, indent=2)
    gen = dict(generation_config or gen or {})
    for key, value in (("bos_token_id", cfg.bos_token_id), ("eos_token_id", cfg.eos_token_id),
                       ("pad_token_id", cfg.pad_token_id)):
        if value is not None:
            gen.setdefault(key, value)
    with open(os.path.join(out_dir, "generation_config.json"), "w") as f:
        json.dump(gen, f, indent=2)
    if tokenizer is not None:
        tokenizer.save_pretrained(out_dir)
    return out_dir


def _remove_old_weights(out_dir):
    for fn in os.listdir(out_dir):
        if fn.endswith(".safetensors") or fn == "model.safetensors.index.json":
            os.remove(os.path.join(out_dir, fn))


def peft_state_dict(cfg: ModelConfig, lora: dict) -> dict[str, np.ndarray]:
    """PEFT-named adapter tensors: lora_A.weight [r, in] and lora_B.weight [out, r] per layer."""
    out = {}
    for block, modules in lora["layers"].items():
        for module, entry in modules.items():
            a = np.asarray(jax.device_get(entry["a"]), np.float32)
            b = np.asarray(jax.device_get(entry["b"]), np.float32)
            for i in range(cfg.num_layers):
                pre = f"base_model.model.model.layers.{i}.{block}.{module}"
                out[f"{pre}.lora_A.weight"] = np.ascontiguousarray(a[i].T)
                out[f"{pre}.lora_B.weight"] = np.ascontiguousarray(b[i].T)
    return out


def export_adapter(cfg: ModelConfig, lora: dict, lora_cfg: LoraConfig, out_dir: str,
                   base_model_name_or_path: str, *, tokenizer=None) -> str:
    """Write a PEFT LoRA adapter folder for `base_model_name_or_path`. Returns out_dir."""
    present = {module for modules in lora["layers"].values() for module in modules}
    expected = {LORA_TARGETS[t][1] for t in lora_cfg.targets}
    if present != expected:
        raise ValueError(f"LoRA tree holds {sorted(present)} but lora_cfg targets {sorted(expected)}")
    os.makedirs(out_dir, exist_ok=True)
    write_safetensors(os.path.join(out_dir, "adapter_model.safetensors"), peft_state_dict(cfg, lora),
                      {"format": "pt"})
    alpha = int(lora_cfg.alpha) if float(lora_cfg.alpha).is_integer() else float(lora_cfg.alpha)
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model_name_or_path,
        "r": lora_cfg.rank,
        "lora_alpha": alpha,
        "lora_dropout": lora_cfg.dropout,
        "target_modules": sorted(expected),
        "bias": "none",
        "fan_in_fan_out": False,
        "inference_mode": True,
        "init_lora_weights": True,
        "use_rslora": False,
        "use_dora": False,
        "modules_to_save": None,
        "layers_to_transform": None,
        "layers_pattern": None,
        "rank_pattern": {},
        "alpha_pattern": {},
        "revision": None,
    }
    with open(os.path.join(out_dir, "adapter_config.json"), "w") as f:
        json.dump(config, f, indent=2)
    if tokenizer is not None:
        tokenizer.save_pretrained(out_dir)
    return out_dir
