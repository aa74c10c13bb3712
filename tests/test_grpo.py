"""GRPO math: advantages, the clipped surrogate, KL, token aggregation and the jit-compiled,
microbatched update checked against a direct full-batch reference written from the formulas."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rftgym.trainers.config import ModelConfig
from rftgym.trainers.grpo import (LossConfig, completion_logprobs, compute_advantages, init_train_state,
                                  make_logprob_fn, make_schedule, make_train_step, per_token_loss,
                                  skip_plan, token_weights)
from rftgym.trainers.lora import LoraConfig, init_lora
from rftgym.trainers.model import forward, init_params, positions_from_mask, sequence_logprobs

CFG = ModelConfig(architecture="llama", vocab_size=48, hidden_size=32, intermediate_size=48, num_layers=1,
                  num_heads=4, num_kv_heads=2, head_dim=8, rope_theta=10000.0)


# ----------------------------------------------------------------------------- advantages


def test_group_advantages_hand_checked():
    rewards = [1.0, 0.0, 0.0, 1.0, 0.5, 0.5, 0.5, 0.5]
    adv, zero = compute_advantages(rewards, 4, "grpo", eps=0.0)
    std = np.std([1, 0, 0, 1], ddof=1)  # 0.57735
    np.testing.assert_allclose(adv[:4], np.array([0.5, -0.5, -0.5, 0.5]) / std, rtol=1e-6)
    np.testing.assert_array_equal(adv[4:], 0.0)
    assert zero.tolist() == [False, True]

    adv, _ = compute_advantages(rewards, 4, "no_std")
    np.testing.assert_allclose(adv, [0.5, -0.5, -0.5, 0.5, 0, 0, 0, 0])

    adv, _ = compute_advantages(rewards, 4, "batch_std", eps=0.0)
    np.testing.assert_allclose(adv, np.array([0.5, -0.5, -0.5, 0.5, 0, 0, 0, 0]) / np.std(rewards, ddof=1),
                               rtol=1e-6)

    # RLOO: reward minus the mean of the other replies of the same prompt
    adv, _ = compute_advantages([1.0, 0.0, 0.0, 0.0], 4, "rloo")
    np.testing.assert_allclose(adv, [1.0, -1 / 3, -1 / 3, -1 / 3], rtol=1e-6)


def test_advantage_errors_are_clear():
    with pytest.raises(ValueError, match="P x 4 values"):
        compute_advantages([1.0, 0.0, 1.0], 4)
    with pytest.raises(ValueError, match="unknown advantage method 'ppo'"):
        compute_advantages([1.0, 0.0], 2, "ppo")


# ----------------------------------------------------------------------------- loss pieces


def test_clipped_surrogate_and_k3_kl_hand_checked():
    logp = jnp.log(jnp.array([[1.0, 1.5, 0.5, 1.1]]))  # ratios vs old = 0 -> 1, 1.5, 0.5, 1.1
    old = jnp.zeros((1, 4))
    # positive advantage: ratio 1.5 is clipped at 1 + 0.28 (asymmetric high clip)
    loss, kl, low, high = per_token_loss(logp, old, None, jnp.array([2.0]), 0.2, 0.28, 0.0)
    np.testing.assert_allclose(loss[0], [-2.0, -2.0 * 1.28, -2.0 * 0.5, -2.0 * 1.1], rtol=1e-6)
    assert kl is None
    assert high[0].tolist() == [False, True, False, False] and not low.any()
    # negative advantage: ratio 0.5 is clipped at 1 - 0.2, ratio 1.5 is not (min keeps it)
    loss, _, low, high = per_token_loss(logp, old, None, jnp.array([-1.0]), 0.2, 0.28, 0.0)
    np.testing.assert_allclose(loss[0], [1.0, 1.5, 0.8, 1.1], rtol=1e-6)
    assert low[0].tolist() == [False, False, True, False] and not high.any()
    # k3: exp(ref - logp) - (ref - logp) - 1, added with weight beta
    ref = jnp.log(jnp.array([[1.0, 1.0, 1.0, 1.0]]))
    loss_kl, kl, _, _ = per_token_loss(logp, old, ref, jnp.array([2.0]), 0.2, 0.28, 0.5)
    d = np.log([1.0, 1.0, 1.0, 1.0]) - np.log([1.0, 1.5, 0.5, 1.1])
    np.testing.assert_allclose(kl[0], np.exp(d) - d - 1, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(loss_kl - loss * 0 - per_token_loss(logp, old, None, jnp.array([2.0]), 0.2, 0.28, 0)[0],
                               0.5 * kl, rtol=1e-5, atol=1e-7)
    assert float(kl[0, 0]) == 0.0 and bool((kl >= 0).all())


def test_clipped_tokens_get_no_gradient():
    old = jnp.zeros((1, 2))

    def total(logp):
        return per_token_loss(logp, old, None, jnp.array([1.0]), 0.2, 0.2, 0.0)[0].sum()

    grad = jax.grad(total)(jnp.log(jnp.array([[1.5, 1.1]])))
    assert float(grad[0, 0]) == 0.0  # clipped above 1 + eps with a positive advantage
    np.testing.assert_allclose(grad[0, 1], -1.1, rtol=1e-6)  # d(-r A)/dlogp = -r A


def test_token_weights_implement_the_three_aggregations():
    mask = jnp.array([[1, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]], jnp.float32)  # last row dropped
    w = token_weights(mask, "grpo", 4)
    np.testing.assert_allclose(w, mask * np.array([[1 / 3], [1.0], [0.0]]) / 2)  # mean per reply, 2 replies
    w = token_weights(mask, "dapo", 4)
    np.testing.assert_allclose(w, mask / 4)  # 4 tokens in the batch
    w = token_weights(mask, "dr_grpo", 4)
    np.testing.assert_allclose(w, mask / (2 * 4))  # replies x max completion length
    with pytest.raises(ValueError, match="unknown loss_type"):
        LossConfig(loss_type="ppo")


def test_schedule_warmup_then_cosine():
    sched = make_schedule(1e-3, total_updates=10, warmup_steps=4, kind="cosine", min_lr_ratio=0.1)
    values = [float(sched(i)) for i in range(10)]
    np.testing.assert_allclose(values[:4], [2.5e-4, 5e-4, 7.5e-4, 1e-3], rtol=1e-5)
    assert values[4] == pytest.approx(1e-3)
    assert values[4] > values[6] > values[9] >= 1e-4 - 1e-12
    const = make_schedule(5e-4, total_updates=10)
    assert float(const(0)) == float(const(9)) == pytest.approx(5e-4)


# ----------------------------------------------------------------------------- the update


def _batch(seed=0, n=8, lp=8, lc=8, group=2):
    """Rows in groups of `group` sharing a left-padded prompt, then right-padded completions."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(1, CFG.vocab_size, (n, lp + lc)).astype(np.int32)
    tokens[:, :lp] = np.repeat(tokens[::group, :lp], group, axis=0)
    attn = np.ones((n, lp + lc), np.int32)
    prompt_len = np.repeat(rng.integers(2, lp + 1, n // group), group)
    for i, p in enumerate(prompt_len):
        attn[i, :lp - p] = 0  # left padding
        tokens[i, :lp - p] = 0
    lens = rng.integers(1, lc + 1, n)
    loss_mask = (np.arange(lc)[None] < lens[:, None]).astype(np.float32)
    attn[:, lp:] = loss_mask
    tokens[:, lp:][loss_mask == 0] = 0
    return {"tokens": tokens, "attention_mask": attn, "loss_mask": loss_mask,
            "advantages": rng.normal(size=n).astype(np.float32)}


def _lora(seed=1):
    lora = init_lora(CFG, LoraConfig(rank=4), jax.random.key(seed))
    # non-zero b so the adapted policy differs from the base (KL > 0)
    return jax.tree_util.tree_map_with_path(
        lambda p, x: x + 0.05 * jax.random.normal(jax.random.key(7), x.shape) if p[-1].key == "b" else x, lora)


def _full_logprobs(params, batch, lora, temperature):
    """log p(token t+1 | ..t) of every row from the model's logits (temperature-scaled)."""
    mask = batch["attention_mask"]
    logits, _ = forward(params, CFG, batch["tokens"], positions_from_mask(mask), mask, lora=lora, lora_scale=2.0)
    logp = jax.nn.log_softmax(logits[:, :-1] / temperature, axis=-1)
    return jnp.take_along_axis(logp, batch["tokens"][:, 1:, None], axis=-1)[..., 0]


def _reference_loss(lora, params, batch, loss_type, beta, eps_lo, eps_hi, old=None, temperature=1.0):
    """The GRPO objective written directly (TRL's formulas) on the full batch."""
    lc = batch["loss_mask"].shape[1]
    logp = _full_logprobs(params, batch, lora, temperature)[:, -lc:]
    ref = jax.lax.stop_gradient(_full_logprobs(params, batch, None, temperature)[:, -lc:])
    old = jax.lax.stop_gradient(logp) if old is None else old
    ratio = jnp.exp(logp - old)
    adv = batch["advantages"][:, None]
    per_tok = -jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - eps_lo, 1 + eps_hi) * adv)
    per_tok = per_tok + beta * (jnp.exp(ref - logp) - (ref - logp) - 1)
    mask = batch["loss_mask"]
    if loss_type == "grpo":
        return ((per_tok * mask).sum(-1) / mask.sum(-1)).mean()
    if loss_type == "dapo":
        return (per_tok * mask).sum() / mask.sum()
    return (per_tok * mask).sum() / (mask.shape[0] * lc)


@pytest.mark.parametrize("loss_type,beta,micro,iters,group,temperature,unroll", [
    ("grpo", 0.0, 0, False, 1, 1.0, False), ("dapo", 0.1, 4, False, 2, 0.7, False),
    ("dr_grpo", 0.05, 4, True, 2, 1.0, False), ("dapo", 0.05, 4, True, 2, 0.7, True)])
def test_update_gradient_matches_full_batch_reference(loss_type, beta, micro, iters, group, temperature, unroll):
    """Microbatching, shared-prompt groups, stored old log-probs and unrolled layers give the
    full-batch gradient."""
    params = init_params(CFG, jax.random.key(0))
    batch = _batch()
    lora = _lora()
    lc = batch["loss_mask"].shape[1]
    old = None
    if iters:  # stored old log-probs from a slightly different policy, so ratios move off 1 and clip
        other = jax.tree.map(lambda x: x * 4.0, lora)
        old = make_logprob_fn(CFG, lora_scale=2.0, microbatch_size=2, group_size=group)(
            other, params, batch["tokens"], batch["attention_mask"], lc)
        full, _ = sequence_logprobs(params, CFG, batch["tokens"], batch["attention_mask"], lora=other, lora_scale=2.0)
        np.testing.assert_allclose(old, full[:, -lc:], rtol=1e-4, atol=1e-5)
        batch = dict(batch, old_logprobs=old)
    loss_cfg = LossConfig(loss_type=loss_type, epsilon=0.2, epsilon_high=0.28, beta=beta,
                          max_completion_length=lc, use_old_logprobs=iters, temperature=temperature)
    sgd = optax.sgd(1.0)  # new params = params - grad, so the update exposes the gradient
    step = make_train_step(CFG, loss_cfg, sgd, lambda s: 1.0, lora_scale=2.0, microbatch_size=micro,
                           group_size=group, unroll_layers=unroll)
    state = init_train_state(jax.tree.map(jnp.array, lora), sgd)
    new_state, metrics = step(state, params, batch, jax.random.key(0))
    grads = jax.tree.map(lambda a, b: a - b, lora, new_state["lora"])

    reference = jax.jit(jax.value_and_grad(_reference_loss), static_argnums=(3, 4, 5, 6, 8))
    ref_loss, ref_grads = reference(lora, params, batch, loss_type, beta, 0.2, 0.28, old, temperature)
    np.testing.assert_allclose(float(metrics["loss"]), float(ref_loss), rtol=1e-4, atol=1e-6)
    for g, r in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(r), rtol=2e-3, atol=2e-6)
    assert int(new_state["step"]) == 1
    assert ("kl" in metrics) == (beta > 0)
    if beta > 0:
        assert float(metrics["kl"]) > 0
    if iters:
        assert float(metrics["clip_ratio_low"]) + float(metrics["clip_ratio_high"]) > 0
    else:
        assert float(metrics["clip_ratio_low"]) == float(metrics["clip_ratio_high"]) == 0.0


@pytest.mark.parametrize("loss_type,live_groups,micro,group", [
    ("grpo", [0, 3], 4, 2), ("dapo", [2], 4, 2), ("dr_grpo", [], 4, 2), ("dapo", [1, 2, 3], 2, 1)])
def test_skipping_zero_advantage_groups_gives_the_full_batch_gradient(loss_type, live_groups, micro, group):
    """Groups whose advantages are all 0 are moved behind the others and not run; loss, gradient
    and optimizer step equal the full batch's (beta 0)."""
    params = init_params(CFG, jax.random.key(0))
    batch = _batch(seed=3)
    n = batch["advantages"].shape[0]
    live_rows = np.zeros(n, bool)
    for g in live_groups:
        live_rows[g * 2:(g + 1) * 2] = True
    batch["advantages"] = np.where(live_rows, batch["advantages"], 0.0).astype(np.float32)
    lora = _lora()
    lc = batch["loss_mask"].shape[1]
    order, active = skip_plan(batch["advantages"], batch["loss_mask"], group, micro)
    assert sorted(order.tolist()) == list(range(n))
    live_units = len(live_groups) if group == 2 else int(live_rows.sum())
    assert active == -(-live_units // (micro // group))
    planned = {k: v[order] for k, v in batch.items()}
    planned["active_microbatches"] = np.int32(active)
    loss_cfg = LossConfig(loss_type=loss_type, max_completion_length=lc)
    sgd = optax.sgd(1.0)
    step = make_train_step(CFG, loss_cfg, sgd, lambda s: 1.0, lora_scale=2.0, microbatch_size=micro, group_size=group)
    new_state, metrics = step(init_train_state(jax.tree.map(jnp.array, lora), sgd), params, planned, jax.random.key(0))
    grads = jax.tree.map(lambda a, b: a - b, lora, new_state["lora"])
    ref_loss, ref_grads = jax.value_and_grad(_reference_loss)(lora, params, batch, loss_type, 0.0, 0.2, 0.2)
    np.testing.assert_allclose(float(metrics["loss"]), float(ref_loss), rtol=1e-4, atol=1e-6)
    for g, r in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(r), rtol=2e-3, atol=2e-6)
    # only the rows of the microbatches that ran are counted (none when no group is live)
    run_rows = active * micro
    assert float(metrics["loss_tokens"]) == pytest.approx(float(planned["loss_mask"][_run_rows(n, micro, group, active)].sum()))
    assert (float(metrics["loss_tokens"]) == 0) == (not live_groups)
    assert int(new_state["step"]) == 1 and run_rows <= n


def _run_rows(n, micro, group, active):
    """Rows of the first `active` microbatches in `_microbatches`' interleaved order."""
    n_micro = n // micro
    groups = np.arange(n // group)
    chosen = groups[(groups % n_micro) < active]
    return (chosen[:, None] * group + np.arange(group)[None]).reshape(-1)


def test_skip_plan_rejects_sizes_that_do_not_fit():
    with pytest.raises(ValueError, match="do not fit"):
        skip_plan(np.zeros(8, np.float32), np.ones((8, 4), np.float32), 3, 4)


def test_kl_is_exactly_zero_for_fresh_adapters_and_logprobs_match_model():
    params = init_params(CFG, jax.random.key(0))
    batch = _batch(seed=3)
    fresh = init_lora(CFG, LoraConfig(rank=4), jax.random.key(2))  # b = 0: the base policy
    lc = batch["loss_mask"].shape[1]
    logp, ent = completion_logprobs(params, CFG, batch["tokens"], batch["attention_mask"], lc, lora=fresh,
                                    lora_scale=2.0)
    full, full_ent = sequence_logprobs(params, CFG, batch["tokens"], batch["attention_mask"])
    np.testing.assert_allclose(logp, full[:, -lc:], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ent, full_ent[:, -lc:], rtol=1e-5, atol=1e-5)

    opt = optax.adamw(1e-3)
    step = make_train_step(CFG, LossConfig(beta=0.1, max_completion_length=lc), opt, lambda s: 1e-3,
                           lora_scale=2.0)
    _, metrics = step(init_train_state(fresh, opt), params, batch, jax.random.key(0))
    assert float(metrics["kl"]) == 0.0
    assert float(metrics["loss_tokens"]) == float(batch["loss_mask"].sum())


MEMORY_SCRIPT = r'''
import json, resource, sys, time
import jax, numpy as np
from rftgym.trainers.grpo import LossConfig, init_train_state, make_optimizer, make_schedule, make_train_step
from rftgym.trainers.loading import load_model
from rftgym.trainers.lora import LoraConfig, init_lora
model = load_model("smollm2-135m-instruct")
after_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
lora_cfg = LoraConfig(rank=16, alpha=32.0)
schedule = make_schedule(5e-4, 10)
opt = make_optimizer(schedule)
state = init_train_state(init_lora(model.cfg, lora_cfg, jax.random.key(0)), opt)
rng = np.random.default_rng(0)
n, lp, lc = 32, 64, 64   # 4 prompts x 8 replies, the quickstart's shapes
tokens = rng.integers(0, model.cfg.vocab_size, (n, lp + lc)).astype(np.int32)
tokens[:, :lp] = np.repeat(tokens[::8, :lp], 8, axis=0)
batch = {"tokens": tokens, "attention_mask": np.ones_like(tokens), "loss_mask": np.ones((n, lc), np.float32),
         "advantages": rng.normal(size=n).astype(np.float32)}
step = make_train_step(model.cfg, LossConfig(max_completion_length=lc), opt, schedule, lora_scale=lora_cfg.scale,
                       microbatch_size=16, group_size=8)
t = time.perf_counter()
state, metrics = step(state, model.params, batch, jax.random.key(1))
jax.block_until_ready(metrics)
print(json.dumps({"after_load_gib": after_load, "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
                  "first_step_s": time.perf_counter() - t, "loss": float(metrics["loss"])}))
'''


@pytest.mark.slow
def test_smollm2_lora_update_peak_host_memory():
    """Peak resident memory of one SmolLM2-135M LoRA update on CPU (4 x 8 rows of 64 + 64 tokens,
    microbatches of 16) stays within the TRAINING.md estimate: weights 0.54 GB + adapters 0.08 GB
    + activations ~1.9 GB, plus the runtime and compilation (measured: 1.4 GiB after loading,
    4.4 GiB peak)."""
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert np.isfinite(result["loss"])
    assert result["peak_gib"] - result["after_load_gib"] < 4.5, result
    assert result["peak_gib"] < 6.0, result
