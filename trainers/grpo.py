"""GRPO: group-relative advantages, the clipped surrogate loss and the jit-compiled update.

A training batch holds N = P x G rows laid out as ``[prompt (left-padded) | completion region
(right-padded)]``:

    tokens          int32   [N, Lp + Lc]
    attention_mask  int32   [N, Lp + Lc]   1 = real token
    loss_mask       float32 [N, Lc]        1 = a generated token the loss counts
    advantages      float32 [N]
    old_logprobs    float32 [N, Lc]        only read when num_iterations > 1

The completion region of a multi-turn episode holds every later turn (the env's messages are in
it with ``loss_mask`` 0), so one layout serves both.

Per token t of reply i (``r = exp(logp - logp_old)``, ``A_i`` the advantage)::

    loss_it = -min(r A_i, clip(r, 1 - epsilon, 1 + epsilon_high) A_i) + beta * KL_it
    KL_it   = exp(ref - logp) - (ref - logp) - 1          (k3, ref = adapters-off base model)

With one update per batch ``logp_old = stop_gradient(logp)``: the ratio is exactly 1 and its
gradient is the policy gradient, so no extra forward pass is spent on old log-probs.

Aggregation over tokens (``loss_type``):
    grpo     mean over each reply's tokens, then mean over replies
    dapo     sum over all tokens / number of tokens in the batch
    dr_grpo  sum over all tokens / (replies x max_new_tokens)   (no length bias)
Each is a fixed weight per token, computed once for the whole batch, so gradient accumulation
over microbatches gives exactly the full-batch gradient.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .config import ModelConfig
from .model import head_logprobs, hidden_states, init_cache, positions_from_mask, unstack_layers

ZERO_STD_TOL = 1e-6


# ----------------------------------------------------------------------------- advantages


def compute_advantages(rewards, group_size: int, method: str = "grpo", eps: float = 1e-4):
    """Group-relative advantages for rewards ordered group by group.

    Args:
        rewards: [P * G] rewards; rows i*G .. (i+1)*G-1 answer prompt i.
        method: ``grpo`` (R - mean) / (std + eps) within the group; ``no_std`` R - mean
            (Dr. GRPO); ``batch_std`` (R - group mean) / (std of the whole batch + eps);
            ``rloo`` R - mean of the other G-1 replies.
        eps: added to the standard deviation.

    Returns:
        (advantages float32 [P*G], zero_std bool [P]: groups whose rewards were all equal).
        Standard deviations are the unbiased (ddof=1) estimate, as TRL computes them.
    """
    r = np.asarray(rewards, dtype=np.float64)
    if r.ndim != 1 or r.size % group_size:
        raise ValueError(f"rewards must be a flat array of P x {group_size} values, got shape {r.shape}")
    if group_size < 2:
        raise ValueError("group-relative advantages need group_size >= 2")
    groups = r.reshape(-1, group_size)
    mean = groups.mean(axis=1, keepdims=True)
    std = groups.std(axis=1, ddof=1, keepdims=True)
    zero_std = std[:, 0] < ZERO_STD_TOL
    if method == "grpo":
        adv = (groups - mean) / np.where(zero_std[:, None], 1.0, std + eps)
    elif method == "no_std":
        adv = groups - mean
    elif method == "batch_std":
        batch_std = r.std(ddof=1)
        adv = (groups - mean) / (batch_std + eps if batch_std >= ZERO_STD_TOL else 1.0)
    elif method == "rloo":
        adv = (groups - mean) * group_size / (group_size - 1)
    else:
        raise ValueError(f"unknown advantage method {method!r}; use grpo, no_std, batch_std or rloo")
    adv = np.where(zero_std[:, None], 0.0, adv)  # exactly 0, not rounding noise
    return adv.reshape(-1).astype(np.float32), zero_std


# ----------------------------------------------------------------------------- loss pieces


@dataclass(frozen=True)
class LossConfig:
    """The knobs of the GRPO objective (hashable: it is a static argument of the update)."""

    loss_type: str = "dapo"
    epsilon: float = 0.2
    epsilon_high: float = 0.2
    beta: float = 0.0
    max_completion_length: int = 64  # the dr_grpo normalizer
    use_old_logprobs: bool = False  # True when num_iterations > 1
    compute_kl: bool = False  # log the KL even when beta == 0
    temperature: float = 1.0  # sampling temperature: log-probs are of logits / temperature

    def __post_init__(self):
        if self.loss_type not in ("grpo", "dapo", "dr_grpo"):
            raise ValueError(f"unknown loss_type {self.loss_type!r}; use grpo, dapo or dr_grpo")

    @property
    def needs_reference(self) -> bool:
        return self.beta > 0 or self.compute_kl


def token_weights(loss_mask, loss_type: str, max_completion_length: int):
    """Weight of every token in the batch loss (the aggregation rule as one [N, Lc] array)."""
    mask = loss_mask.astype(jnp.float32)
    per_row = mask.sum(axis=1)
    rows = jnp.maximum((per_row > 0).sum(), 1).astype(jnp.float32)
    if loss_type == "grpo":
        return mask / jnp.maximum(per_row, 1.0)[:, None] / rows
    if loss_type == "dapo":
        return mask / jnp.maximum(mask.sum(), 1.0)
    if loss_type == "dr_grpo":
        return mask / (rows * max_completion_length)
    raise ValueError(f"unknown loss_type {loss_type!r}")


def per_token_loss(logp, old_logp, ref_logp, advantages, epsilon, epsilon_high, beta):
    """Clipped surrogate (+ k3 KL) per token, and the clipping indicators.

    logp/old_logp/ref_logp [N, T]; advantages [N]. ref_logp may be None (no KL).
    Returns (loss [N, T], kl [N, T] or None, low_clipped [N, T], high_clipped [N, T]).
    """
    adv = advantages[:, None]
    ratio = jnp.exp(logp - old_logp)
    clipped = jnp.clip(ratio, 1.0 - epsilon, 1.0 + epsilon_high)
    loss = -jnp.minimum(ratio * adv, clipped * adv)
    kl = None
    if ref_logp is not None:
        delta = ref_logp - logp
        kl = jnp.exp(delta) - delta - 1.0
        if beta:
            loss = loss + beta * kl
    low = (ratio < 1.0 - epsilon) & (adv < 0)
    high = (ratio > 1.0 + epsilon_high) & (adv > 0)
    return loss, kl, low, high


def completion_logprobs(params, cfg: ModelConfig, tokens, attention_mask, completion_len: int, *,
                        lora=None, lora_scale=1.0, remat=False, dropout_rng=None, lora_dropout=0.0,
                        temperature: float = 1.0):
    """log p and entropy of the last ``completion_len`` tokens of every row (fp32 [B, Lc]).

    The vocabulary projection runs over the completion region only, not over the prompt.
    ``temperature`` scales the logits first: the policy being trained is the one that sampled.
    """
    start = tokens.shape[1] - completion_len
    if start < 1:
        raise ValueError("every row needs at least one prompt token before the completion region")
    positions = positions_from_mask(attention_mask)
    h, _ = hidden_states(params, cfg, tokens, positions, attention_mask, lora=lora,
                         lora_scale=lora_scale, remat=remat, dropout_rng=dropout_rng,
                         lora_dropout=lora_dropout)
    return head_logprobs(params, cfg, h[:, start - 1:-1], tokens[:, start:], temperature)


def grouped_completion_logprobs(params, cfg: ModelConfig, tokens, attention_mask, completion_len: int,
                                group_size: int, *, lora=None, lora_scale=1.0, remat=False,
                                dropout_rng=None, lora_dropout=0.0, temperature: float = 1.0):
    """`completion_logprobs` for rows that come in groups of `group_size` sharing one prompt.

    Each group's prompt runs through the model once; its KV cache is repeated for the group's
    completions, which then run with that cache. Gradients flow back through the shared cache,
    so the result (and its gradient) equals running every full row, at a fraction of the cost
    when prompts are long: P x Lp + N x Lc tokens instead of N x (Lp + Lc).
    """
    n, total = tokens.shape
    prompt_len = total - completion_len
    if prompt_len < 1 or n % group_size:
        raise ValueError(f"need a prompt region and rows in whole groups of {group_size}, got {tokens.shape}")
    groups = n // group_size
    prompt = tokens.reshape(groups, group_size, total)[:, 0, :prompt_len]
    prompt_mask = attention_mask.reshape(groups, group_size, total)[:, 0, :prompt_len]
    dtype = params["embed_tokens"]["embedding"].dtype
    per_layer = isinstance(params["layers"], (list, tuple))
    cache = init_cache(cfg, groups, total, dtype, per_layer=per_layer)
    positions = positions_from_mask(prompt_mask)
    rngs = jax.random.split(dropout_rng) if dropout_rng is not None else (None, None)
    h_prompt, cache = hidden_states(params, cfg, prompt, positions, prompt_mask, lora=lora,
                                    lora_scale=lora_scale, cache=cache, cache_index=0, remat=remat,
                                    dropout_rng=rngs[0], lora_dropout=lora_dropout)

    def expand(a, axis):
        return jnp.repeat(a, group_size, axis=axis)

    if per_layer:
        cache = {"k": [expand(k, 0) for k in cache["k"]], "v": [expand(v, 0) for v in cache["v"]],
                 "mask": expand(cache["mask"], 0)}
    else:
        cache = {"k": expand(cache["k"], 1), "v": expand(cache["v"], 1), "mask": expand(cache["mask"], 0)}
    completion = tokens[:, prompt_len:]
    completion_mask = attention_mask[:, prompt_len:]
    start = expand(positions[:, -1] + 1, 0)
    c_positions = start[:, None] + jnp.maximum(jnp.cumsum(completion_mask, axis=-1) - 1, 0)
    h_completion, _ = hidden_states(params, cfg, completion, c_positions, completion_mask, lora=lora,
                                    lora_scale=lora_scale, cache=cache, cache_index=prompt_len, remat=remat,
                                    dropout_rng=rngs[1], lora_dropout=lora_dropout)
    h = jnp.concatenate([expand(h_prompt[:, -1:], 0), h_completion[:, :-1]], axis=1)
    return head_logprobs(params, cfg, h, completion, temperature)


def policy_logprobs(params, cfg, tokens, attention_mask, completion_len, group_size, **kw):
    """Completion log-probs, sharing prompt computation within groups when group_size > 1."""
    if group_size > 1:
        return grouped_completion_logprobs(params, cfg, tokens, attention_mask, completion_len, group_size, **kw)
    return completion_logprobs(params, cfg, tokens, attention_mask, completion_len, **kw)


# ----------------------------------------------------------------------------- optimizer


def make_schedule(learning_rate: float, total_updates: int, warmup_steps: int = 0,
                  kind: str = "constant", min_lr_ratio: float = 0.1):
    """Linear warmup from 0 to ``learning_rate``, then constant, cosine or linear decay."""
    total_updates = max(1, total_updates)
    warmup_steps = min(warmup_steps, total_updates)
    end = learning_rate * min_lr_ratio
    decay_steps = max(1, total_updates - warmup_steps)
    if kind == "constant":
        after = optax.constant_schedule(learning_rate)
    elif kind == "cosine":
        after = optax.cosine_decay_schedule(learning_rate, decay_steps, alpha=min_lr_ratio)
    elif kind == "linear":
        after = optax.linear_schedule(learning_rate, end, decay_steps)
    else:
        raise ValueError(f"unknown lr schedule {kind!r}; use constant, cosine or linear")
    if warmup_steps == 0:
        return after
    # the first update already gets lr / warmup_steps (an update with lr 0 would be wasted)
    warm = optax.linear_schedule(learning_rate / warmup_steps, learning_rate, max(1, warmup_steps - 1))
    return optax.join_schedules([warm, after], [warmup_steps])


def make_optimizer(schedule, *, weight_decay=0.0, b1=0.9, b2=0.99, eps=1e-8, max_grad_norm=1.0):
    """AdamW with global-norm clipping (clipping first, as in TRL/HF)."""
    parts = []
    if max_grad_norm and max_grad_norm > 0:
        parts.append(optax.clip_by_global_norm(max_grad_norm))
    parts.append(optax.adamw(schedule, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay))
    return optax.chain(*parts)


def init_train_state(lora, optimizer) -> dict:
    """The trained state: LoRA params, optimizer state and the update counter."""
    return {"lora": lora, "opt_state": optimizer.init(lora), "step": jnp.zeros((), jnp.int32)}


# ----------------------------------------------------------------------------- the update


def _microbatches(x, n_micro: int, group: int = 1):
    """[N, ...] -> [n_micro, N // n_micro, ...] in whole groups of `group` consecutive rows:
    microbatch j holds groups j, j + n_micro, j + 2 n_micro, ...

    Groups stay in their place along the leading (batch-sharded) axis, so every microbatch is
    spread evenly over the data-parallel devices.
    """
    n, rest = x.shape[0], x.shape[1:]
    groups = n // group
    y = x.reshape((groups // n_micro, n_micro, group) + rest).swapaxes(0, 1)
    return y.reshape((n_micro, n // n_micro) + rest)


def skip_plan(advantages, loss_mask, group_size: int, microbatch_size: int) -> tuple[np.ndarray, int]:
    """Row order and microbatch count for an update that skips the groups without a gradient.

    Without a KL term (beta = 0) a group whose advantages are all exactly 0 (every reply got the
    same reward) or whose loss mask is empty adds exactly zero to the gradient. Returns a row
    permutation that puts the other groups first in the order `_microbatches` fills its
    microbatches, and the number of microbatches that hold them (0 when no group has a gradient).
    Token weights do not depend on row order, so the permuted batch with only those microbatches
    run has the same loss and gradient as the whole batch.
    """
    adv = np.asarray(advantages, np.float32)
    mask = np.asarray(loss_mask, np.float32)
    n = adv.shape[0]
    mb = microbatch_size or n
    if n % group_size or n % mb or mb % group_size:
        raise ValueError(f"batch of {n} rows, microbatch {mb} and group size {group_size} do not fit")
    groups, n_micro, per_micro = n // group_size, n // mb, mb // group_size
    live = (np.any(adv.reshape(groups, group_size) != 0, axis=1)
            & (mask.reshape(groups, group_size, -1).sum(axis=(1, 2)) > 0))
    order = np.concatenate([np.flatnonzero(live), np.flatnonzero(~live)])
    slots = np.asarray(_microbatches(np.arange(groups), n_micro)).reshape(-1)  # group slots, microbatch by microbatch
    group_at = np.empty(groups, np.int64)
    group_at[slots] = order
    rows = (group_at[:, None] * group_size + np.arange(group_size)[None, :]).reshape(-1)
    return rows, int(-(-int(live.sum()) // per_micro))


def make_train_step(cfg: ModelConfig, loss_cfg: LossConfig, optimizer, schedule, *,
                    lora_scale: float, microbatch_size: int = 0, remat: bool = False,
                    lora_dropout: float = 0.0, group_size: int = 1, row_sharding=None,
                    state_sharding=None, base_sharding=None, unroll_layers: bool = False) -> Callable:
    """Build ``train_step(state, base_params, batch, rng) -> (state, metrics)``: one jit-compiled
    function that runs every microbatch's forward/backward (a fori_loop, gradients summed), then
    one AdamW update. ``state`` is donated.

    With ``group_size`` G > 1 the batch rows come in groups of G consecutive rows sharing one
    prompt; microbatches then hold whole groups (``microbatch_size`` a multiple of G) and each
    prompt is run once per microbatch (see `grouped_completion_logprobs`).

    The optional shardings (NamedSharding trees, see sharding.py) pin the layout of the state,
    the base parameters and the batch rows on a device mesh.

    ``batch["active_microbatches"]`` (optional int32 scalar, from `skip_plan`) runs only the first
    that many microbatches: the rest must have no gradient (all advantages 0, beta 0). The count is
    a traced value, so skipping never compiles a new program; the optimizer still steps.

    ``unroll_layers`` runs the decoder layers as an unrolled loop over per-layer slices instead of
    ``lax.scan``: a longer compile, but no per-layer stacking of saved activations (faster on
    CPU, most of all with bf16 weights).
    """

    def step_fn(state, base_params, batch, rng):
        lora = state["lora"]
        if unroll_layers:
            base_params = unstack_layers(base_params)
        tokens = batch["tokens"]
        n, completion_len = batch["loss_mask"].shape
        mb = microbatch_size or n
        if n % mb or mb % group_size:
            raise ValueError(f"microbatch_size {mb} must divide the batch of {n} rows and be a multiple "
                             f"of the group size {group_size}")
        n_micro = n // mb
        weights = token_weights(batch["loss_mask"], loss_cfg.loss_type, loss_cfg.max_completion_length)
        fields = {"tokens": tokens, "attention_mask": batch["attention_mask"],
                  "loss_mask": batch["loss_mask"].astype(jnp.float32), "weights": weights,
                  "advantages": batch["advantages"]}
        if loss_cfg.use_old_logprobs:
            fields["old_logprobs"] = batch["old_logprobs"]
        xs = {k: _microbatches(v, n_micro, group_size) for k, v in fields.items()}
        active = batch.get("active_microbatches")  # see `skip_plan`: only the first ones have a gradient
        n_run = n_micro if active is None else jnp.clip(jnp.asarray(active, jnp.int32), 0, n_micro)
        logprobs = functools.partial(policy_logprobs, base_params, cfg, completion_len=completion_len,
                                     group_size=group_size, remat=remat, temperature=loss_cfg.temperature)

        def constrain(tree):
            if row_sharding is None:
                return tree
            return jax.tree.map(lambda a: jax.lax.with_sharding_constraint(a, row_sharding.for_shape(a.shape)), tree)

        def micro(index, carry):
            grad_acc, sums = carry
            mbatch = constrain(jax.tree.map(lambda a: jax.lax.dynamic_index_in_dim(a, index, keepdims=False), xs))
            drop_rng = jax.random.fold_in(rng, index) if lora_dropout > 0 else None
            ref = None
            if loss_cfg.needs_reference:
                ref, _ = logprobs(mbatch["tokens"], mbatch["attention_mask"], lora=None)
                ref = jax.lax.stop_gradient(ref)

            def loss_fn(lora_params):
                if unroll_layers:
                    lora_params = unstack_layers(lora_params)
                logp, entropy = logprobs(mbatch["tokens"], mbatch["attention_mask"], lora=lora_params,
                                         lora_scale=lora_scale, dropout_rng=drop_rng, lora_dropout=lora_dropout)
                old = mbatch["old_logprobs"] if loss_cfg.use_old_logprobs else jax.lax.stop_gradient(logp)
                tok_loss, kl, low, high = per_token_loss(logp, old, ref, mbatch["advantages"],
                                                         loss_cfg.epsilon, loss_cfg.epsilon_high,
                                                         loss_cfg.beta)
                mask = mbatch["loss_mask"]
                loss = jnp.sum(tok_loss * mbatch["weights"])
                stats = {
                    "loss": loss,
                    "tokens": mask.sum(),
                    "entropy": jnp.sum(entropy * mask),
                    "clip_low": jnp.sum(low * mask),
                    "clip_high": jnp.sum(high * mask),
                    "kl": jnp.sum(kl * mask) if kl is not None else jnp.zeros(()),
                }
                return loss, stats

            (_, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(lora)
            grad_acc = jax.tree.map(jnp.add, grad_acc, grads)
            sums = {k: sums[k] + v for k, v in stats.items()}
            return grad_acc, sums

        zeros = jax.tree.map(jnp.zeros_like, lora)
        init_sums = {k: jnp.zeros((), jnp.float32) for k in ("loss", "tokens", "entropy", "clip_low", "clip_high", "kl")}
        grads, sums = jax.lax.fori_loop(0, n_run, micro, (zeros, init_sums))
        grad_norm = optax.tree.norm(grads)
        updates, opt_state = optimizer.update(grads, state["opt_state"], lora)
        new_lora = optax.apply_updates(lora, updates)
        count = jnp.maximum(sums["tokens"], 1.0)
        metrics = {
            "loss": sums["loss"],
            "grad_norm": grad_norm,
            "learning_rate": jnp.asarray(schedule(state["step"]), jnp.float32),
            "entropy": sums["entropy"] / count,
            "clip_ratio_low": sums["clip_low"] / count,
            "clip_ratio_high": sums["clip_high"] / count,
            "loss_tokens": sums["tokens"],
        }
        if loss_cfg.needs_reference:
            metrics["kl"] = sums["kl"] / count
        new_state = {"lora": new_lora, "opt_state": opt_state, "step": state["step"] + 1}
        return new_state, metrics

    jit_kwargs: dict[str, Any] = {"donate_argnums": (0,)}
    if state_sharding is not None:
        jit_kwargs["in_shardings"] = (state_sharding, base_sharding, None, None)
        jit_kwargs["out_shardings"] = (state_sharding, None)
    return jax.jit(step_fn, **jit_kwargs)


def make_logprob_fn(cfg: ModelConfig, *, lora_scale: float, microbatch_size: int = 0,
                    group_size: int = 1, temperature: float = 1.0) -> Callable:
    """``logprobs(lora, base_params, tokens, attention_mask, completion_len) -> [N, Lc]``:
    the current policy's log-probs of a batch (the "old" log-probs when num_iterations > 1)."""

    def fn(lora, base_params, tokens, attention_mask, completion_len):
        n = tokens.shape[0]
        mb = microbatch_size or n
        n_micro = n // mb
        xs = (_microbatches(tokens, n_micro, group_size), _microbatches(attention_mask, n_micro, group_size))

        def body(_, x):
            logp, _ = policy_logprobs(base_params, cfg, x[0], x[1], completion_len, group_size, lora=lora,
                                      lora_scale=lora_scale, temperature=temperature)
            return None, logp

        _, out = jax.lax.scan(body, None, xs)  # [n_micro, mb, Lc]
        # undo the microbatch interleaving: [M, groups/M, G, Lc] -> [groups, G, Lc]
        groups = n // group_size
        out = out.reshape(n_micro, groups // n_micro, group_size, completion_len).swapaxes(0, 1)
        return out.reshape(n, completion_len)

    return jax.jit(fn, static_argnums=(4,))
