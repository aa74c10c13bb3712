"""Llama / Qwen2 / Qwen3 decoder as pure JAX functions over a params pytree.

Parameters are a nested dict named after the Hugging Face modules, so export is a rename and a
transpose. Kernels are stored [in, out]; the decoder layers are stacked on a leading axis of
size L and run with `lax.scan` (one compiled layer, whatever the depth):

    embed_tokens/embedding                  [V, H]
    layers/input_layernorm/scale            [L, H]
    layers/self_attn/q_proj/kernel          [L, H, NH*D]   (+ q_proj/bias [L, NH*D] if attention_bias)
    layers/self_attn/k_proj/kernel          [L, H, KVH*D]  (+ bias)
    layers/self_attn/v_proj/kernel          [L, H, KVH*D]  (+ bias)
    layers/self_attn/o_proj/kernel          [L, NH*D, H]
    layers/self_attn/q_norm/scale           [L, D]         (qk_norm only)
    layers/self_attn/k_norm/scale           [L, D]         (qk_norm only)
    layers/post_attention_layernorm/scale   [L, H]
    layers/mlp/gate_proj/kernel             [L, H, I]
    layers/mlp/up_proj/kernel               [L, H, I]
    layers/mlp/down_proj/kernel             [L, I, H]
    norm/scale                              [H]
    lm_head/kernel                          [H, V]         (absent when tie_word_embeddings)

Activations run in the parameter dtype (fp32 or bf16) with fp32 matmul accumulation;
attention softmax, logits and log-probs are fp32. LoRA adapters (see lora.py) are added on the
fly: `lora=None` is the base model, bit for bit. The frozen-weight, vocabulary-head and adapter
products (`base_matmul`, `tied_head_matmul`, `lora_product`) carry hand-written backward passes
with the same gradients as autodiff, shaped for speed on CPU (see each docstring).

`unstack_layers` turns the stacked layers into a list of per-layer dicts (same names), which
`forward` also accepts: a Python loop instead of `lax.scan` (used by the sampler).

The KV cache (`init_cache`) holds k and v as [L, B, KVH, S, D] (or a list of L [B, KVH, S, D]
for unstacked params) plus a [B, S] mask of filled, real slots. A forward with a cache writes
its T new tokens at slots cache_index..cache_index+T-1 and attends to the earlier filled slots
plus (causally) to the new tokens.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from .config import ModelConfig

_NEG_INF = -1e30  # finite, so a query with no visible key gives a uniform row, not NaN

# LoRA target short name -> (block, module) in the param tree
LORA_TARGETS = {
    "q": ("self_attn", "q_proj"),
    "k": ("self_attn", "k_proj"),
    "v": ("self_attn", "v_proj"),
    "o": ("self_attn", "o_proj"),
    "gate": ("mlp", "gate_proj"),
    "up": ("mlp", "up_proj"),
    "down": ("mlp", "down_proj"),
}


def linear_shapes(cfg: ModelConfig) -> dict[str, tuple[int, int]]:
    """(in, out) of every projection inside a layer, keyed by LoRA target name."""
    h, d, i = cfg.hidden_size, cfg.head_dim, cfg.intermediate_size
    return {
        "q": (h, cfg.num_heads * d),
        "k": (h, cfg.num_kv_heads * d),
        "v": (h, cfg.num_kv_heads * d),
        "o": (cfg.num_heads * d, h),
        "gate": (h, i),
        "up": (h, i),
        "down": (i, h),
    }


# ----------------------------------------------------------------------------- parameters


def init_params(cfg: ModelConfig, key, dtype=jnp.float32) -> dict:
    """Random parameters (normal(0, 0.02) kernels, unit norms, zero biases)."""
    n_layers = cfg.num_layers
    keys = iter(jax.random.split(key, 16))

    def normal(shape):
        return (0.02 * jax.random.normal(next(keys), shape, jnp.float32)).astype(dtype)

    def ones(shape):
        return jnp.ones(shape, dtype)

    shapes = linear_shapes(cfg)
    attn, mlp = {}, {}
    for name, (block, module) in LORA_TARGETS.items():
        fan_in, fan_out = shapes[name]
        entry = {"kernel": normal((n_layers, fan_in, fan_out))}
        if cfg.attention_bias and name in ("q", "k", "v"):
            entry["bias"] = jnp.zeros((n_layers, fan_out), dtype)
        (attn if block == "self_attn" else mlp)[module] = entry
    if cfg.qk_norm:
        attn["q_norm"] = {"scale": ones((n_layers, cfg.head_dim))}
        attn["k_norm"] = {"scale": ones((n_layers, cfg.head_dim))}
    params = {
        "embed_tokens": {"embedding": normal((cfg.vocab_size, cfg.hidden_size))},
        "layers": {
            "input_layernorm": {"scale": ones((n_layers, cfg.hidden_size))},
            "self_attn": attn,
            "post_attention_layernorm": {"scale": ones((n_layers, cfg.hidden_size))},
            "mlp": mlp,
        },
        "norm": {"scale": ones((cfg.hidden_size,))},
    }
    if not cfg.tie_word_embeddings:
        params["lm_head"] = {"kernel": normal((cfg.hidden_size, cfg.vocab_size))}
    return params


def init_cache(cfg: ModelConfig, batch: int, length: int, dtype=jnp.float32, per_layer: bool = False) -> dict:
    """An empty KV cache for `batch` rows of `length` slots.

    k/v are [L, B, KVH, S, D] arrays, or lists of L [B, KVH, S, D] arrays with `per_layer=True`
    (for unstacked params, see `unstack_layers`).
    """
    shape = (batch, cfg.num_kv_heads, length, cfg.head_dim)
    if per_layer:
        kv = {"k": [jnp.zeros(shape, dtype) for _ in range(cfg.num_layers)],
              "v": [jnp.zeros(shape, dtype) for _ in range(cfg.num_layers)]}
    else:
        kv = {"k": jnp.zeros((cfg.num_layers,) + shape, dtype), "v": jnp.zeros((cfg.num_layers,) + shape, dtype)}
    return {**kv, "mask": jnp.zeros((batch, length), jnp.int32)}


def unstack_layers(tree: dict) -> dict:
    """Params (or a LoRA tree) with the stacked "layers" split into a list of per-layer dicts.

    `forward` accepts both forms. The unrolled form compiles a longer program but lets XLA use
    each layer's weights in place; the stacked form slices (copies) them inside `lax.scan`,
    which dominates small-batch decoding on CPU.
    """
    layers = tree["layers"]
    if isinstance(layers, (list, tuple)):
        return tree
    n = jax.tree.leaves(layers)[0].shape[0]
    return {**tree, "layers": [jax.tree.map(lambda x, i=i: x[i], layers) for i in range(n)]}


# ----------------------------------------------------------------------------- building blocks


def rms_norm(x, scale, eps):
    """RMSNorm computed in fp32, cast back, then scaled (as transformers does)."""
    xf = x.astype(jnp.float32)
    xf = xf * jax.lax.rsqrt(jnp.mean(xf * xf, axis=-1, keepdims=True) + eps)
    return scale * xf.astype(x.dtype)


def rope_inv_freq(cfg: ModelConfig) -> np.ndarray:
    """Inverse rotary frequencies [D/2] (fp32), with Llama-3 or linear scaling applied."""
    dim = cfg.head_dim
    inv_freq = 1.0 / (cfg.rope_theta ** (np.arange(0, dim, 2, dtype=np.int64).astype(np.float32) / dim))
    inv_freq = inv_freq.astype(np.float32)
    scaling = cfg.rope_scaling or {}
    rope_type = scaling.get("rope_type", "default")
    if rope_type == "linear":
        inv_freq = inv_freq / np.float32(scaling["factor"])
    elif rope_type == "llama3":
        factor = scaling["factor"]
        low, high = scaling.get("low_freq_factor", 1.0), scaling.get("high_freq_factor", 4.0)
        old_len = scaling.get("original_max_position_embeddings", cfg.max_position_embeddings)
        low_wavelen, high_wavelen = old_len / low, old_len / high
        wavelen = 2 * math.pi / inv_freq
        scaled = np.where(wavelen > low_wavelen, inv_freq / factor, inv_freq)
        smooth = (old_len / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
        inv_freq = np.where(medium, smoothed, scaled).astype(np.float32)
    return inv_freq


def rope_tables(cfg: ModelConfig, positions, dtype):
    """(cos, sin) [B, T, 1, D/2] for the given positions, computed once per forward."""
    freqs = positions.astype(jnp.float32)[..., None] * jnp.asarray(rope_inv_freq(cfg))  # [B, T, D/2]
    return jnp.cos(freqs)[:, :, None, :].astype(dtype), jnp.sin(freqs)[:, :, None, :].astype(dtype)


def apply_rope(x, cos, sin):
    """Rotate x [B, T, N, D] (half-split convention of HF Llama) by the rope_tables angles."""
    x1, x2 = jnp.split(x, 2, axis=-1)
    return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


def _dropout(x, rate, rng):
    keep = jax.random.bernoulli(rng, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), 0.0).astype(x.dtype)


@jax.custom_vjp
def lora_product(x, a, b):
    """(x @ a) @ b in fp32 for x [..., in], a [in, r], b [r, out].

    Same value and gradients as the plain expression; the backward pass is written out so that
    every weight gradient contracts the token axis with the small rank-r operand transposed,
    never the [tokens, in/out] activations (XLA on CPU otherwise materializes transposed copies of
    them, which cost more than the adapter's matmuls).
    """
    return (x @ a) @ b


def _lora_product_fwd(x, a, b):
    xa = x @ a
    return xa @ b, (x, xa, a, b)


def _lora_product_bwd(res, g):
    x, xa, a, b = res
    rank = a.shape[-1]
    x2, xa2, g2 = x.reshape(-1, x.shape[-1]), xa.reshape(-1, rank), g.reshape(-1, g.shape[-1])
    g_xa = g2 @ b.T  # [T, r]
    grad_b = xa2.T @ g2  # [r, T] @ [T, out]
    grad_a = (g_xa.T @ x2).T  # ([r, T] @ [T, in]).T
    grad_x = (g_xa @ a.T).reshape(x.shape)
    return grad_x, grad_a, grad_b


lora_product.defvjp(_lora_product_fwd, _lora_product_bwd)


def _frozen_weight_product(w_spec: str):
    """x [..., i] times a frozen weight laid out as `w_spec` ("io" or "oi"), accumulated in fp32.

    The backward pass casts the incoming gradient to the weight's dtype before multiplying, so
    with bf16 weights both directions run as bf16 x bf16 -> fp32 products (about 2x the fp32 rate
    on CPUs with bf16 dot instructions) instead of an fp32 gradient promoting the weight to fp32.
    With fp32 weights it is exactly the plain product and its gradients.
    """

    @jax.custom_vjp
    def product(x, w):
        return jnp.einsum(f"...i,{w_spec}->...o", x, w, preferred_element_type=jnp.float32)

    def fwd(x, w):
        return product(x, w), (x, w)

    def bwd(res, g):
        x, w = res
        g = g.astype(w.dtype)
        grad_x = jnp.einsum(f"...o,{w_spec}->...i", g, w, preferred_element_type=jnp.float32).astype(x.dtype)
        x2, g2 = x.reshape(-1, x.shape[-1]), g.reshape(-1, g.shape[-1])
        grad_w = jnp.einsum(f"ti,to->{w_spec}", x2, g2, preferred_element_type=jnp.float32).astype(w.dtype)
        return grad_x, grad_w  # grad_w is dead code (removed by XLA) unless w itself is differentiated

    product.defvjp(fwd, bwd)
    return product


base_matmul = _frozen_weight_product("io")
base_matmul.__doc__ = "x [..., in] @ w [in, out] in fp32, with `_frozen_weight_product`'s backward."
tied_head_matmul = _frozen_weight_product("oi")
tied_head_matmul.__doc__ = "h [..., H] @ embedding [V, H]^T in fp32 (the tied vocabulary head), same backward."


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def _head_logprobs(h, w, targets, w_spec, temperature):
    return _head_logprobs_fwd(h, w, targets, w_spec, temperature)[0]


def _head_logprobs_fwd(h, w, targets, w_spec, temperature):
    logits = jnp.einsum(f"ti,{w_spec}->to", h.astype(w.dtype), w, preferred_element_type=jnp.float32)
    if temperature != 1.0:
        logits = logits / temperature
    top = jnp.max(logits, axis=-1, keepdims=True)
    e = jnp.exp(logits - top)
    total = jnp.sum(e, axis=-1)
    # a batched dot, not sum(e * logits): XLA's CPU multiply-reduce fusion is ~10x slower here
    weighted = jnp.einsum("to,to->t", e, logits)
    lse = top[:, 0] + jnp.log(total)
    picked = jnp.take_along_axis(logits, targets[:, None], axis=-1)[:, 0]
    return (picked - lse, lse - weighted / total), (h, w, targets, logits, lse)


def _head_logprobs_bwd(w_spec, temperature, res, cotangents):
    h, w, targets, logits, lse = res
    g = cotangents[0]  # the entropy output is never differentiated (see head_logprobs)
    # d logp / d logits = onehot(target) - softmax; the one-hot part goes straight to the target rows
    d = (-g[:, None] * jnp.exp(logits - lse[:, None])).astype(w.dtype)
    rows = jnp.take(w, targets, axis=0) if w_spec == "oi" else jnp.take(w, targets, axis=1).T
    grad_h = jnp.einsum(f"to,{w_spec}->ti", d, w, preferred_element_type=jnp.float32)
    grad_h = (grad_h + g[:, None] * rows.astype(jnp.float32)) / temperature
    grad_w = jnp.einsum(f"to,ti->{w_spec}", d, h.astype(w.dtype), preferred_element_type=jnp.float32)
    onehot_part = jnp.zeros((w.shape[0] if w_spec == "oi" else w.shape[1], h.shape[-1]), jnp.float32)
    onehot_part = onehot_part.at[targets].add(g[:, None] * h.astype(jnp.float32))
    grad_w = (grad_w + (onehot_part if w_spec == "oi" else onehot_part.T)) / temperature
    return grad_h.astype(h.dtype), grad_w.astype(w.dtype), None  # grad_w is dead code unless w is trained


_head_logprobs.defvjp(_head_logprobs_fwd, _head_logprobs_bwd)


def head_logprobs(params, cfg: ModelConfig, h, targets, temperature: float = 1.0):
    """log p(targets) and the entropy (not differentiated) under softmax(logits / temperature).

    h [..., H] final hidden states, targets int [...]; both outputs fp32 [...]. One fused pass over
    the [tokens, V] logits with a hand-written backward (softmax minus one-hot, the one-hot part
    taken from the target rows), which avoids the scatter and extra vocabulary-sized passes that
    autodiff of log_softmax + take_along_axis costs.
    """
    if cfg.tie_word_embeddings:
        w, w_spec = params["embed_tokens"]["embedding"], "oi"
    else:
        w, w_spec = params["lm_head"]["kernel"], "io"
    lead = targets.shape
    logp, entropy = _head_logprobs(h.reshape(-1, h.shape[-1]), w, jnp.asarray(targets, jnp.int32).reshape(-1),
                                   w_spec, float(temperature))
    return logp.reshape(lead), jax.lax.stop_gradient(entropy).reshape(lead)


def _linear(x, p, lp, lora_scale, rng, rate):
    """x @ kernel (+ bias) (+ LoRA: dropout(x) @ a @ b * scale), summed in fp32, cast to x's dtype.

    fp32 accumulation is also the fast path for bf16 weights on CPU.
    """
    y = base_matmul(x, p["kernel"])
    if "bias" in p:
        y = y + p["bias"]
    if lp is not None:
        xa = x.astype(jnp.float32)
        if rate > 0.0 and rng is not None:
            xa = _dropout(xa, rate, rng)
        y = y + lora_scale * lora_product(xa, lp["a"], lp["b"])
    return y.astype(x.dtype)


def _attention(cfg, q, k, v, mask):
    """Causal grouped-query attention among T new tokens: q [B,T,NH,D], k/v [B,T,KVH,D], mask [B,T]."""
    b, t, _, d = q.shape
    kvh = cfg.num_kv_heads
    qg = q.reshape(b, t, kvh, cfg.num_heads // kvh, d)
    visible = jnp.tril(jnp.ones((t, t), bool))[None] & (mask[:, None, :] > 0)  # [B, T, T]
    scores = jnp.einsum("btkgd,bskd->bkgts", qg, k, preferred_element_type=jnp.float32) * d**-0.5
    scores = jnp.where(visible[:, None, None], scores, _NEG_INF)
    probs = jax.nn.softmax(scores, axis=-1).astype(v.dtype)
    return jnp.einsum("bkgts,bskd->btkgd", probs, v).reshape(b, t, cfg.num_heads * d)


def _cached_attention(cfg, q, k_buf, v_buf, slot_mask, cache_index):
    """Attention of T new queries over a cache that already holds their own K/V.

    q [B,T,NH,D]; k_buf/v_buf [B,KVH,S,D]; slot_mask [B,S] (filled, real slots). Query t sits in
    slot cache_index + t and sees the real slots up to and including its own.
    """
    b, t, _, d = q.shape
    kvh, s = cfg.num_kv_heads, k_buf.shape[2]
    slots = jnp.arange(s)
    q = q.reshape(b, t, kvh, cfg.num_heads // kvh, d)
    if t == 1:  # decoding: drop the T axis so both products are plain batched GEMVs
        visible = (slot_mask > 0) & (slots[None, :] <= cache_index)  # [B, S]
        scores = jnp.einsum("bkgd,bksd->bkgs", q[:, 0], k_buf, preferred_element_type=jnp.float32) * d**-0.5
        scores = jnp.where(visible[:, None, None, :], scores, _NEG_INF)
        probs = jax.nn.softmax(scores, axis=-1).astype(v_buf.dtype)
        return jnp.einsum("bkgs,bksd->bkgd", probs, v_buf).reshape(b, 1, cfg.num_heads * d)
    query_slot = cache_index + jnp.arange(t)
    visible = (slot_mask[:, None, :] > 0) & (slots[None, None, :] <= query_slot[None, :, None])  # [B, T, S]
    scores = jnp.einsum("btkgd,bksd->bkgts", q, k_buf, preferred_element_type=jnp.float32) * d**-0.5
    scores = jnp.where(visible[:, None, None], scores, _NEG_INF)
    probs = jax.nn.softmax(scores, axis=-1).astype(v_buf.dtype)
    return jnp.einsum("bkgts,bksd->btkgd", probs, v_buf).reshape(b, t, cfg.num_heads * d)


def _write_slots(buf, new, index):
    """Write new [B, T, KVH, D] into buf [B, KVH, S, D] at slots index..index+T-1."""
    zero = jnp.zeros((), jnp.int32)
    new = jnp.swapaxes(new, 1, 2).astype(buf.dtype)
    return jax.lax.dynamic_update_slice(buf, new, (zero, zero, jnp.asarray(index, jnp.int32), zero))


def _layer(cfg, rope, x, mask, p, lp, kv_cache, cache, lora_scale, rng, rate):
    """One pre-norm decoder layer.

    kv_cache: None or this layer's (k_buf, v_buf); cache: None or (slot_mask, cache_index,
    read_cache). The new K/V are written into the buffers before attending, so the update can
    happen in place. Returns (x_out, updated (k_buf, v_buf) or None).
    """
    b, t, _ = x.shape
    attn_p, mlp_p = p["self_attn"], p["mlp"]
    attn_l = lp.get("self_attn", {}) if lp is not None else {}
    mlp_l = lp.get("mlp", {}) if lp is not None else {}
    rngs = list(jax.random.split(rng, 7)) if rng is not None else [None] * 7

    def lin(block_p, block_l, name, h, i):
        return _linear(h, block_p[name], block_l.get(name), lora_scale, rngs[i], rate)

    h = rms_norm(x, p["input_layernorm"]["scale"], cfg.rms_norm_eps)
    q = lin(attn_p, attn_l, "q_proj", h, 0).reshape(b, t, cfg.num_heads, cfg.head_dim)
    k = lin(attn_p, attn_l, "k_proj", h, 1).reshape(b, t, cfg.num_kv_heads, cfg.head_dim)
    v = lin(attn_p, attn_l, "v_proj", h, 2).reshape(b, t, cfg.num_kv_heads, cfg.head_dim)
    if cfg.qk_norm:
        q = rms_norm(q, attn_p["q_norm"]["scale"], cfg.rms_norm_eps)
        k = rms_norm(k, attn_p["k_norm"]["scale"], cfg.rms_norm_eps)
    q = apply_rope(q, *rope)
    k = apply_rope(k, *rope)
    if kv_cache is None:
        attn = _attention(cfg, q, k, v, mask)
    else:
        slot_mask, cache_index, read_cache = cache
        kv_cache = (_write_slots(kv_cache[0], k, cache_index), _write_slots(kv_cache[1], v, cache_index))
        if read_cache:
            attn = _cached_attention(cfg, q, kv_cache[0], kv_cache[1], slot_mask, cache_index)
        else:  # the cache held nothing before these tokens
            attn = _attention(cfg, q, k, v, mask)
    x = x + lin(attn_p, attn_l, "o_proj", attn, 3)

    h = rms_norm(x, p["post_attention_layernorm"]["scale"], cfg.rms_norm_eps)
    gate = lin(mlp_p, mlp_l, "gate_proj", h, 4)
    up = lin(mlp_p, mlp_l, "up_proj", h, 5)
    x = x + lin(mlp_p, mlp_l, "down_proj", jax.nn.silu(gate) * up, 6)
    return x, kv_cache


# ----------------------------------------------------------------------------- the model


def hidden_states(params, cfg: ModelConfig, tokens, positions, attention_mask, *, lora=None,
                  lora_scale=1.0, cache=None, cache_index=None, dropout_rng=None, lora_dropout=0.0,
                  remat=False):
    """Final-normed hidden states [B, T, H] and the updated cache (or None).

    See `forward` for the arguments. `remat=True` recomputes each layer's activations in the
    backward pass (gradient checkpointing).
    """
    tokens = jnp.asarray(tokens, jnp.int32)
    positions = jnp.asarray(positions, jnp.int32)
    mask = jnp.asarray(attention_mask).astype(jnp.int32)
    x = jnp.take(params["embed_tokens"]["embedding"], tokens, axis=0)
    rope = rope_tables(cfg, positions, x.dtype)
    layer_lora = lora["layers"] if lora is not None else None
    if cache is not None and cache_index is None:
        raise ValueError("cache_index is required when a cache is given")
    cache_info = None
    if cache is not None:
        # a cache at a static index 0 held nothing: attend among the new tokens only
        read_cache = not (isinstance(cache_index, int) and cache_index == 0)
        idx = jnp.asarray(cache_index, jnp.int32)
        slot_mask = jax.lax.dynamic_update_slice(cache["mask"], mask, (jnp.zeros((), jnp.int32), idx))
        cache_info = (slot_mask, idx, read_cache)

    def body(x, xs):
        p, lp, i, kv = xs
        rng = jax.random.fold_in(dropout_rng, i) if dropout_rng is not None else None
        return _layer(cfg, rope, x, mask, p, lp, kv, cache_info, lora_scale, rng, lora_dropout)

    if remat:
        body = jax.checkpoint(body)
    kv_in = (cache["k"], cache["v"]) if cache is not None else None
    if isinstance(params["layers"], (list, tuple)):  # unstacked layers (see unstack_layers)
        kv_out = []
        for i, p in enumerate(params["layers"]):
            lp = layer_lora[i] if layer_lora is not None else None
            kv = (kv_in[0][i], kv_in[1][i]) if kv_in is not None else None
            x, kv = body(x, (p, lp, i, kv))
            kv_out.append(kv)
        kv_out = ([k for k, _ in kv_out], [v for _, v in kv_out]) if cache is not None else None
    else:
        x, kv_out = jax.lax.scan(body, x, (params["layers"], layer_lora, jnp.arange(cfg.num_layers), kv_in))
    x = rms_norm(x, params["norm"]["scale"], cfg.rms_norm_eps)
    new_cache = None
    if cache is not None:
        new_cache = {"k": kv_out[0], "v": kv_out[1], "mask": cache_info[0]}
    return x, new_cache


def lm_logits(params, cfg: ModelConfig, h):
    """fp32 logits [..., V] from final hidden states."""
    if cfg.tie_word_embeddings:
        return tied_head_matmul(h, params["embed_tokens"]["embedding"])
    return base_matmul(h, params["lm_head"]["kernel"])


def forward(params, cfg: ModelConfig, tokens, positions, attention_mask, *, lora=None, lora_scale=1.0,
            cache=None, cache_index=None, dropout_rng=None, lora_dropout=0.0, remat=False):
    """Logits (fp32 [B, T, V]) and the updated cache (None without a cache).

    tokens/positions: int32 [B, T]; attention_mask [B, T] (1 = real token; pads are never
    attended to). Causal. `lora`: None (base model, exactly) or a LoRA tree from lora.py, scaled
    by `lora_scale`; `lora_dropout` with `dropout_rng` drops LoRA inputs (training only).
    `cache`/`cache_index`: a cache from `init_cache` and the slot the first new token goes to.
    """
    h, new_cache = hidden_states(params, cfg, tokens, positions, attention_mask, lora=lora,
                                 lora_scale=lora_scale, cache=cache, cache_index=cache_index,
                                 dropout_rng=dropout_rng, lora_dropout=lora_dropout, remat=remat)
    return lm_logits(params, cfg, h), new_cache


def positions_from_mask(attention_mask):
    """Position ids for left/right-padded rows: cumsum(mask) - 1, clipped at 0."""
    mask = jnp.asarray(attention_mask).astype(jnp.int32)
    return jnp.maximum(jnp.cumsum(mask, axis=-1) - 1, 0)


def sequence_logprobs(params, cfg: ModelConfig, tokens, attention_mask, *, lora=None, lora_scale=1.0,
                      dropout_rng=None, lora_dropout=0.0, remat=False, logits_chunk_size=None):
    """Per-token log p(tokens[:, t+1] | tokens[:, :t+1]) and the entropy of that distribution.

    Returns two fp32 [B, T-1] arrays. Positions come from the mask (cumsum - 1), so a row may be
    a left-padded prompt followed by a right-padded completion. `logits_chunk_size` computes the
    vocabulary projection over that many time steps at a time (and recomputes it in the backward
    pass) so the [B, T, V] logits are never held at once.
    """
    tokens = jnp.asarray(tokens, jnp.int32)
    positions = positions_from_mask(attention_mask)
    h, _ = hidden_states(params, cfg, tokens, positions, attention_mask, lora=lora,
                         lora_scale=lora_scale, dropout_rng=dropout_rng, lora_dropout=lora_dropout,
                         remat=remat)
    h, targets = h[:, :-1], tokens[:, 1:]
    steps = h.shape[1]
    if not logits_chunk_size or logits_chunk_size >= steps:
        return head_logprobs(params, cfg, h, targets)
    n_chunks = -(-steps // logits_chunk_size)
    pad = n_chunks * logits_chunk_size - steps
    h = jnp.pad(h, ((0, 0), (0, pad), (0, 0)))
    targets = jnp.pad(targets, ((0, 0), (0, pad)))
    b = h.shape[0]
    h = h.reshape(b, n_chunks, logits_chunk_size, -1).swapaxes(0, 1)
    targets = targets.reshape(b, n_chunks, logits_chunk_size).swapaxes(0, 1)
    chunk_fn = jax.checkpoint(lambda ht: head_logprobs(params, cfg, ht[0], ht[1]))
    logp, ent = jax.lax.map(chunk_fn, (h, targets))
    logp = logp.swapaxes(0, 1).reshape(b, -1)[:, :steps]
    ent = ent.swapaxes(0, 1).reshape(b, -1)[:, :steps]
    return logp, ent
