"""Batched autoregressive sampling with a KV cache, compiled once per shape bucket.

Two jitted programs per shape bucket:
  * prefill(prompts [P, Tp]) -> KV cache [L, P*G, KVH, Tp+M, D], first-token logits
    (the P prompts are run once and the cache is repeated for the G samples of each);
  * decode: a `lax.while_loop` that samples a token, feeds it back through the model and writes
    its K/V into the cache (donated, so updated in place) until every row has hit a stop token
    or M tokens are out.
Prompts are left-padded to the prompt bucket Tp, so every row's last prompt token sits in the
same slot and decode steps write one shared slot; positions come from the padding mask.
Prompt length, batch size and max-new-tokens are rounded up to buckets so a run compiles only a
handful of programs. Sampling is deterministic given the key (one key per row and step).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from .config import ModelConfig
from .model import hidden_states, init_cache, lm_logits, positions_from_mask, unstack_layers

_TOP_P_CANDIDATES = 256  # nucleus searched among the top-256 tokens first (exact fallback: full sort)


@dataclass
class SampleOutput:
    """Completions for every (prompt, sample) row; row i*G + j is sample j of prompt i."""

    prompt_ids: list[list[int]]
    completion_ids: np.ndarray  # int32 [N, max_new_tokens], pad after the end
    completion_mask: np.ndarray  # int32 [N, max_new_tokens], 1 = generated token (stop token included)
    logprobs: np.ndarray  # float32 [N, max_new_tokens], log p of each sampled token (0 on pad)
    lengths: np.ndarray  # int32 [N]
    finish_reasons: list[str]  # "stop" | "length"
    texts: list[str]  # decoded completions without the stop token
    stats: dict = field(default_factory=dict)  # timings of this call (prefill_s, decode_s, steps, ...)


def _bucket(n: int, buckets: tuple[int, ...]) -> int:
    for b in buckets:
        if n <= b:
            return b
    top = buckets[-1]
    return -(-n // top) * top


def _length_buckets(lo: int, hi: int) -> tuple[int, ...]:
    """lo, 1.5 lo, 2 lo, 3 lo, 4 lo, 6 lo, ... below hi, then hi."""
    out, b = [], lo
    while b < hi:
        out += [b, b * 3 // 2] if b * 3 // 2 < hi else [b]
        b *= 2
    return tuple(x for x in out if x < hi) + (hi,)


def _argmax(x):
    """First index of the row maximum (two plain reductions: faster than jnp.argmax on CPU)."""
    top = jnp.max(x, axis=-1, keepdims=True)
    idx = jnp.min(jnp.where(x == top, jnp.arange(x.shape[-1]), x.shape[-1]), axis=-1)
    return jnp.minimum(idx, x.shape[-1] - 1).astype(jnp.int32)


_BLOCK = 256


def _categorical(x, keys):
    """One draw per row from softmax(x) by inverting the CDF in two levels (blocks of 256 tokens).

    Avoids a full-vocabulary cumsum and one random number per token; exact up to fp32 rounding.
    """
    n, v = x.shape
    n_blocks = -(-v // _BLOCK)
    p = jnp.exp(x - jnp.max(x, axis=-1, keepdims=True))
    p = jnp.pad(p, ((0, 0), (0, n_blocks * _BLOCK - v))).reshape(n, n_blocks, _BLOCK)
    block_cdf = jnp.cumsum(jnp.sum(p, axis=-1), axis=-1)  # [N, n_blocks]
    u = jax.vmap(lambda k: jax.random.uniform(k, ()))(keys) * block_cdf[:, -1]
    block = jnp.minimum(jnp.sum(block_cdf <= u[:, None], axis=-1), n_blocks - 1)
    before = jnp.where(block > 0, jnp.take_along_axis(block_cdf, jnp.maximum(block - 1, 0)[:, None], axis=-1)[:, 0], 0.0)
    inner = jnp.take_along_axis(p, block[:, None, None], axis=1)[:, 0]  # [N, 256]
    inner_cdf = before[:, None] + jnp.cumsum(inner, axis=-1)
    j = jnp.sum(inner_cdf <= u[:, None], axis=-1)
    # rounding can push u past the block's last token: fall back to its last non-zero entry
    last_nonzero = jnp.max(jnp.where(inner > 0, jnp.arange(_BLOCK), 0), axis=-1)
    return (block * _BLOCK + jnp.minimum(j, last_nonzero)).astype(jnp.int32)


def sample_token(logits, keys, temperature, top_p, *, greedy: bool, top_k: int, use_top_p: bool):
    """Sample one token per row from fp32 logits [N, V]; returns (tokens, log p under the raw policy).

    The returned log-probs are log_softmax(logits) at the sampled token, i.e. of the temperature-1,
    unfiltered distribution (the quantity the trainer recomputes).
    """
    if greedy:
        tokens = _argmax(logits)
    else:
        x = logits / temperature
        if top_k:
            kth = _top_values(x, top_k)[:, -1:]
            x = jnp.where(x < kth, -jnp.inf, x)
        if use_top_p:
            x = _nucleus(x, top_p)
        tokens = _categorical(x, keys)
    token_logit = jnp.take_along_axis(logits, tokens[:, None], axis=-1)[:, 0]
    return tokens, token_logit - jax.nn.logsumexp(logits, axis=-1)


def _top_values(x, k):
    """The k largest values per row, sorted. The barrier stops XLA from rewriting top_k followed by
    a slice into a full sort (hundreds of ms per step on CPU)."""
    return jax.lax.optimization_barrier(jax.lax.top_k(x, k)[0])


def _nucleus(x, top_p):
    """Mask logits outside the smallest set of top tokens whose probability reaches top_p.

    The cut is searched among the top-256 logits; rows those do not cover are resolved exactly
    by bisection on the logit threshold (no full-vocabulary sort, which is slow on CPU).
    """
    lse = jax.nn.logsumexp(x, axis=-1, keepdims=True)
    top_vals = _top_values(x, min(_TOP_P_CANDIDATES, x.shape[-1]))
    p_top = jnp.exp(top_vals - lse)
    before = jnp.cumsum(p_top, axis=-1) - p_top  # mass of strictly better candidates
    n_keep = jnp.maximum(jnp.sum(before < top_p, axis=-1), 1)
    thr_top = jnp.take_along_axis(top_vals, n_keep[:, None] - 1, axis=-1)
    covered = jnp.sum(p_top, axis=-1, keepdims=True) >= top_p

    def bisect(_):
        # largest threshold t whose set {x >= t} still holds top_p of the mass
        probs = jnp.exp(x - lse)
        finite = jnp.where(jnp.isfinite(x), x, jnp.inf)
        lo = jnp.min(finite, axis=-1, keepdims=True)  # keeps everything: mass 1 >= top_p
        hi = top_vals[:, :1]  # the best token alone

        def step(_, bounds):
            lo, hi = bounds
            mid = 0.5 * (lo + hi)
            ok = jnp.sum(jnp.where(x >= mid, probs, 0.0), axis=-1, keepdims=True) >= top_p
            return jnp.where(ok, mid, lo), jnp.where(ok, hi, mid)

        hi_ok = jnp.sum(jnp.where(x >= hi, probs, 0.0), axis=-1, keepdims=True) >= top_p
        lo, hi = jax.lax.fori_loop(0, 40, step, (lo, hi))
        return jnp.where(hi_ok, hi, lo)

    thr = jax.lax.cond(jnp.all(covered), lambda _: thr_top, bisect, None)
    thr = jnp.where(covered, thr_top, thr)
    return jnp.where(x < thr, -jnp.inf, x)


class Sampler:
    """Generate completions for batches of token-id prompts with the JAX policy.

    Args:
      cfg, tokenizer: the model config and its transformers tokenizer (for pad/eos ids and texts).
      max_prompt_len: longest prompt accepted (longer ones are a ValueError).
      prompt_buckets / batch_buckets / new_token_buckets: the padded sizes programs are compiled
        for (defaults: prompt lengths 32, 48, 64, 96, 128, ...; batches and new tokens in powers
        of two). Larger batches round up to a multiple of the last bucket.
      cache_dtype: KV-cache dtype (default: the dtype the weights are sampled in).
      decode_dtype: sample with the weights cast to this dtype (e.g. "bfloat16": about 1.5x the
        decode speed on CPU for fp32 params; matmuls still accumulate in fp32). Default: as given.
        Log-probs are then those of the cast policy.
      skip_special_tokens: passed to tokenizer.decode for `texts`.

    Decoding runs the layers unrolled over a per-layer copy of the weights (see
    `model.unstack_layers`), made on the first call and reused while the same param arrays are
    passed (the usual case with LoRA, where only the adapters change): budget one extra copy of
    the base weights.
    """

    def __init__(self, cfg: ModelConfig, tokenizer, *, max_prompt_len: int = 1024, prompt_buckets=None,
                 batch_buckets=None, new_token_buckets=None, cache_dtype=None, decode_dtype=None,
                 skip_special_tokens=False):
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.max_prompt_len = int(max_prompt_len)
        self.prompt_buckets = tuple(sorted(prompt_buckets or _length_buckets(min(32, self.max_prompt_len),
                                                                             self.max_prompt_len)))
        self.batch_buckets = tuple(sorted(batch_buckets or (1, 2, 4, 8, 16, 32, 64, 128)))
        self.new_token_buckets = tuple(sorted(new_token_buckets or (16, 32, 64, 128, 256, 512, 1024, 2048)))
        self.cache_dtype = cache_dtype
        self.decode_dtype = jnp.dtype(decode_dtype) if decode_dtype is not None else None
        self.skip_special_tokens = skip_special_tokens
        pad = getattr(tokenizer, "pad_token_id", None)
        if pad is None:
            pad = cfg.pad_token_id if cfg.pad_token_id is not None else (cfg.eos_token_ids or (0,))[0]
        self.pad_id = int(pad)
        eos = set(cfg.eos_token_ids)
        if getattr(tokenizer, "eos_token_id", None) is not None:
            eos.add(int(tokenizer.eos_token_id))
        self.eos_ids = tuple(sorted(eos))
        self.compiled: set[tuple] = set()  # shape keys seen (each one compiled a prefill + decode)
        self._layer_cache = None  # (param leaves, unstacked params): decoding uses per-layer weights
        self._prefill = jax.jit(self._prefill_fn, static_argnames=("num_samples", "cache_len", "cache_dtype"))
        self._decode = jax.jit(self._decode_fn, donate_argnames=("cache",),
                               static_argnames=("start_slot", "max_new_bucket", "greedy", "top_k", "use_top_p"))

    # ------------------------------------------------------------------ jitted programs

    def _prefill_fn(self, params, lora, lora_scale, tokens, mask, *, num_samples, cache_len, cache_dtype):
        cfg = self.cfg
        positions = positions_from_mask(mask)
        lora = unstack_layers(lora) if lora is not None else None
        cache = init_cache(cfg, tokens.shape[0], cache_len, cache_dtype, per_layer=True)
        h, cache = hidden_states(params, cfg, tokens, positions, mask, lora=lora, lora_scale=lora_scale,
                                 cache=cache, cache_index=0)
        logits = lm_logits(params, cfg, h[:, -1])
        next_pos = positions[:, -1] + 1
        if num_samples > 1:
            cache = jax.tree.map(lambda x: jnp.repeat(x, num_samples, axis=0), cache)
            logits = jnp.repeat(logits, num_samples, axis=0)
            next_pos = jnp.repeat(next_pos, num_samples, axis=0)
        return cache, logits, next_pos

    def _decode_fn(self, params, lora, lora_scale, cache, logits, positions, active, key, temperature, top_p,
                   stop_ids, max_new, *, start_slot, max_new_bucket, greedy, top_k, use_top_p):
        cfg = self.cfg
        lora = unstack_layers(lora) if lora is not None else None
        n = logits.shape[0]
        row_keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(n))

        def sample(logits, step):
            keys = jax.vmap(lambda k: jax.random.fold_in(k, step))(row_keys)
            return sample_token(logits, keys, temperature, top_p, greedy=greedy, top_k=top_k, use_top_p=use_top_p)

        def record(state, tok, lp, step):
            tokens_buf, logp_buf, done, stopped = state
            live = ~done
            tok = jnp.where(live, tok, self.pad_id)
            tokens_buf = tokens_buf.at[:, step].set(tok)
            logp_buf = logp_buf.at[:, step].set(jnp.where(live, lp, 0.0))
            hit = live & jnp.any(tok[:, None] == stop_ids[None, :], axis=-1)
            return tokens_buf, logp_buf, done | hit, stopped | hit, tok

        tokens_buf = jnp.full((n, max_new_bucket), self.pad_id, jnp.int32)
        logp_buf = jnp.zeros((n, max_new_bucket), jnp.float32)
        done = ~active
        tok, lp = sample(logits, 0)
        tokens_buf, logp_buf, done, stopped, tok = record((tokens_buf, logp_buf, done, jnp.zeros_like(done)), tok, lp, 0)
        ones = jnp.ones((n, 1), jnp.int32)

        def cond(carry):
            step, _, _, done, *_ = carry
            return (step < max_new) & ~jnp.all(done)

        def body(carry):
            step, cache, tok, done, stopped, positions, tokens_buf, logp_buf = carry
            h, cache = hidden_states(params, cfg, tok[:, None], positions[:, None], ones, lora=lora,
                                     lora_scale=lora_scale, cache=cache, cache_index=start_slot + step - 1)
            logits = lm_logits(params, cfg, h[:, 0])
            tok, lp = sample(logits, step)
            tokens_buf, logp_buf, done, stopped, tok = record((tokens_buf, logp_buf, done, stopped), tok, lp, step)
            return step + 1, cache, tok, done, stopped, positions + 1, tokens_buf, logp_buf

        carry = (jnp.int32(1), cache, tok, done, stopped, positions, tokens_buf, logp_buf)
        steps, cache, _, done, stopped, _, tokens_buf, logp_buf = jax.lax.while_loop(cond, body, carry)
        return tokens_buf, logp_buf, stopped, steps, cache  # the cache is returned so its donated buffers alias

    # ------------------------------------------------------------------ public API

    def generate(self, params, prompts: list[list[int]], *, lora=None, lora_scale=1.0, num_samples: int = 1,
                 max_new_tokens: int = 64, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                 key=None, stop_token_ids=None, ignore_eos: bool = False) -> SampleOutput:
        """Sample `num_samples` completions of each prompt (token-id lists).

        temperature 0 is greedy decoding. top_k 0 and top_p 1 disable those filters. The EOS ids of
        the config and tokenizer always stop a row; `stop_token_ids` adds more. Rows are ordered
        prompt-major: row i*num_samples + j is sample j of prompt i. `ignore_eos=True` stops only on
        `stop_token_ids` (fixed-length generation, e.g. for benchmarks).
        """
        prompts = self._check(prompts, num_samples, max_new_tokens, temperature, top_k, top_p, key)
        greedy = temperature == 0
        if key is None:
            key = jax.random.PRNGKey(0)
        n_prompts = len(prompts)
        longest = max(len(p) for p in prompts)
        t_bucket = _bucket(longest, self.prompt_buckets)
        p_bucket = _bucket(n_prompts, self.batch_buckets)
        m_bucket = _bucket(max_new_tokens, self.new_token_buckets)
        tokens = np.full((p_bucket, t_bucket), self.pad_id, np.int32)
        mask = np.zeros((p_bucket, t_bucket), np.int32)
        for i, p in enumerate(prompts):
            tokens[i, t_bucket - len(p):] = p
            mask[i, t_bucket - len(p):] = 1
        active = np.zeros(p_bucket * num_samples, bool)
        active[: n_prompts * num_samples] = True
        stops = sorted((set() if ignore_eos else set(self.eos_ids)) | set(int(s) for s in (stop_token_ids or ())))
        stop_arr = np.full(_bucket(max(len(stops), 1), (4, 8, 16, 32)), -1, np.int32)
        stop_arr[: len(stops)] = stops
        params = self._unstacked(params)
        cache_dtype = self.cache_dtype or params["embed_tokens"]["embedding"].dtype
        shape_key = (p_bucket, num_samples, t_bucket, m_bucket, greedy, int(top_k), top_p < 1.0, len(stop_arr),
                     jnp.dtype(cache_dtype).name, lora is None)
        first = shape_key not in self.compiled
        self.compiled.add(shape_key)

        t0 = time.perf_counter()
        cache, logits, positions = self._prefill(params, lora, jnp.float32(lora_scale), tokens, mask,
                                                 num_samples=num_samples, cache_len=t_bucket + m_bucket,
                                                 cache_dtype=jnp.dtype(cache_dtype))
        logits.block_until_ready()
        t1 = time.perf_counter()
        tokens_buf, logp_buf, stopped, steps, _ = self._decode(
            params, lora, jnp.float32(lora_scale), cache, logits, positions, active, key,
            jnp.float32(temperature if not greedy else 1.0), jnp.float32(top_p), stop_arr,
            jnp.int32(max_new_tokens), start_slot=t_bucket, max_new_bucket=m_bucket, greedy=greedy,
            top_k=int(top_k), use_top_p=top_p < 1.0)
        tokens_buf = np.asarray(tokens_buf)
        t2 = time.perf_counter()
        n = n_prompts * num_samples
        ids = tokens_buf[:n, :max_new_tokens]
        logp = np.asarray(logp_buf)[:n, :max_new_tokens]
        stopped = np.asarray(stopped)[:n]
        stop_set = np.asarray(stops, np.int32)
        lengths = np.zeros(n, np.int32)
        texts, reasons = [], []
        for r in range(n):
            row = ids[r]
            hits = np.nonzero(np.isin(row, stop_set))[0]
            end = int(hits[0]) + 1 if stopped[r] and len(hits) else max_new_tokens
            lengths[r] = end
            reasons.append("stop" if stopped[r] else "length")
            body = row[: end - 1] if stopped[r] else row[:end]
            texts.append(self.tokenizer.decode(body.tolist(), skip_special_tokens=self.skip_special_tokens))
        comp_mask = (np.arange(max_new_tokens)[None, :] < lengths[:, None]).astype(np.int32)
        ids = np.where(comp_mask > 0, ids, self.pad_id).astype(np.int32)
        logp = np.where(comp_mask > 0, logp, 0.0).astype(np.float32)
        stats = {"prefill_s": t1 - t0, "decode_s": t2 - t1, "decode_steps": int(steps),
                 "first_call_for_shape": first, "shape": shape_key[:4],
                 "generated_tokens": int(lengths.sum())}
        return SampleOutput(
            prompt_ids=[list(prompts[i // num_samples]) for i in range(n)], completion_ids=ids,
            completion_mask=comp_mask, logprobs=logp, lengths=lengths, finish_reasons=reasons, texts=texts,
            stats=stats)

    def _unstacked(self, params):
        """Per-layer params for decoding, made once and reused while the same arrays are passed."""
        if isinstance(params["layers"], (list, tuple)) and self.decode_dtype is None:
            return params
        leaves = jax.tree.leaves(params)
        if self._layer_cache is not None and len(self._layer_cache[0]) == len(leaves) and all(
                a is b for a, b in zip(self._layer_cache[0], leaves)):
            return self._layer_cache[1]
        self._layer_cache = None  # drop the old copy before making the new one
        dtype = self.decode_dtype
        unstacked = jax.jit(lambda p: jax.tree.map(lambda x: x.astype(dtype) if dtype is not None else x,
                                                   unstack_layers(p)))(params)
        self._layer_cache = (leaves, unstacked)
        return unstacked

    def _check(self, prompts, num_samples, max_new_tokens, temperature, top_k, top_p, key):
        if isinstance(prompts, np.ndarray):
            prompts = prompts.tolist()
        if not isinstance(prompts, (list, tuple)) or not prompts:
            raise ValueError("prompts must be a non-empty list of token-id lists")
        if isinstance(prompts[0], int):
            raise ValueError("prompts must be a list of token-id lists (got a flat list of ints; wrap it in [ ])")
        out = []
        for i, p in enumerate(prompts):
            p = list(p)
            if not p:
                raise ValueError(f"prompt {i} is empty")
            if len(p) > self.max_prompt_len:
                raise ValueError(f"prompt {i} has {len(p)} tokens, more than max_prompt_len={self.max_prompt_len}")
            if min(p) < 0 or max(p) >= self.cfg.vocab_size:
                raise ValueError(f"prompt {i} has token ids outside [0, {self.cfg.vocab_size})")
            out.append([int(t) for t in p])
        if not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
        if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}")
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        if not isinstance(top_k, int) or top_k < 0 or top_k > self.cfg.vocab_size:
            raise ValueError(f"top_k must be an integer in [0, vocab_size], got {top_k!r}")
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        return out
