"""LoRA: zero-init equals base, adapters-off is exactly the base, merge, dropout, PEFT reference."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from model_fixtures import TINY_VOCAB, jforward as forward, left_padded_batch, make_tiny_hf, rel_err
from rftgym.trainers.config import ModelConfig
from rftgym.trainers.lora import LoraConfig, init_lora, lora_num_params, merge_lora
from rftgym.trainers.model import (base_matmul, head_logprobs, init_params, lora_product, positions_from_mask,
                                   sequence_logprobs, tied_head_matmul)

CFG = ModelConfig(architecture="qwen2", vocab_size=64, hidden_size=32, intermediate_size=48, num_layers=2,
                  num_heads=4, num_kv_heads=2, head_dim=8, attention_bias=True)


def _batch(seed=0):
    tokens, mask = left_padded_batch(np.random.default_rng(seed), [7, 4], 7, CFG.vocab_size)
    return jnp.asarray(tokens % CFG.vocab_size), jnp.asarray(mask)


def _randomize_b(lora, key, std=0.05):
    leaves, tree = jax.tree.flatten(lora)
    keys = jax.random.split(key, len(leaves))
    return jax.tree.unflatten(tree, [x + std * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)])


def test_init_shapes_dtypes_and_zero_b():
    lcfg = LoraConfig(rank=4, alpha=8.0, targets=("q", "v", "down"))
    lora = init_lora(CFG, lcfg, jax.random.PRNGKey(0))
    assert set(lora["layers"]["self_attn"]) == {"q_proj", "v_proj"} and set(lora["layers"]["mlp"]) == {"down_proj"}
    q = lora["layers"]["self_attn"]["q_proj"]
    assert q["a"].shape == (2, 32, 4) and q["b"].shape == (2, 4, 32)
    assert lora["layers"]["mlp"]["down_proj"]["a"].shape == (2, 48, 4)
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(lora))
    assert all(float(jnp.abs(e["b"]).max()) == 0.0 for m in lora["layers"].values() for e in m.values())
    assert float(jnp.abs(q["a"]).max()) > 0 and float(jnp.abs(q["a"]).max()) <= 1 / 32**0.5
    assert lcfg.scale == 2.0 and lcfg.hf_target_modules == ["q_proj", "v_proj", "down_proj"]
    assert lora_num_params(lora) == 2 * ((32 * 4 + 4 * 32) + (32 * 4 + 4 * 16) + (48 * 4 + 4 * 32))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_zero_init_equals_base_and_lora_off_is_exact(dtype):
    params = init_params(CFG, jax.random.PRNGKey(1), dtype)
    lcfg = LoraConfig(rank=4)
    lora = init_lora(CFG, lcfg, jax.random.PRNGKey(2))
    tokens, mask = _batch()
    pos = positions_from_mask(mask)
    base, _ = forward(params, CFG, tokens, pos, mask)
    step0, _ = forward(params, CFG, tokens, pos, mask, lora=lora, lora_scale=lcfg.scale)
    assert np.array_equal(np.asarray(base), np.asarray(step0))
    trained = _randomize_b(lora, jax.random.PRNGKey(3))
    adapted, _ = forward(params, CFG, tokens, pos, mask, lora=trained, lora_scale=lcfg.scale)
    assert float(jnp.abs(adapted - base).max()) > 1e-3
    off, _ = forward(params, CFG, tokens, pos, mask, lora=None)
    assert np.array_equal(np.asarray(base), np.asarray(off))


def test_merge_matches_adapted_forward():
    params = init_params(CFG, jax.random.PRNGKey(4))
    lcfg = LoraConfig(rank=4, alpha=16.0)
    lora = _randomize_b(init_lora(CFG, lcfg, jax.random.PRNGKey(5)), jax.random.PRNGKey(6))
    tokens, mask = _batch(1)
    pos = positions_from_mask(mask)
    adapted, _ = forward(params, CFG, tokens, pos, mask, lora=lora, lora_scale=lcfg.scale)
    merged, _ = forward(merge_lora(params, lora, lcfg), CFG, tokens, pos, mask)
    assert rel_err(merged, adapted) < 1e-5
    assert merge_lora(params, lora, lcfg)["layers"]["self_attn"]["q_proj"]["bias"] is \
        params["layers"]["self_attn"]["q_proj"]["bias"]


def test_gradients_reach_adapters_only_in_fp32():
    params = jax.tree.map(lambda x: x.astype(jnp.bfloat16), init_params(CFG, jax.random.PRNGKey(7)))
    lcfg = LoraConfig(rank=2)
    lora = init_lora(CFG, lcfg, jax.random.PRNGKey(8))
    tokens, mask = _batch(2)

    def loss(lora):
        logp, _ = sequence_logprobs(params, CFG, tokens, mask, lora=lora, lora_scale=lcfg.scale)
        return -jnp.sum(logp * mask[:, 1:])

    grads = jax.jit(jax.grad(loss))(lora)
    q = grads["layers"]["self_attn"]["q_proj"]
    assert q["b"].dtype == jnp.float32 and float(jnp.abs(q["b"]).max()) > 0
    assert float(jnp.abs(q["a"]).max()) == 0.0  # b = 0 -> no signal to a at step 0


def test_lora_product_gradients_match_plain_autodiff():
    k = jax.random.split(jax.random.PRNGKey(3), 4)
    x = jax.random.normal(k[0], (3, 5, 12))
    a = jax.random.normal(k[1], (12, 4))
    b = jax.random.normal(k[2], (4, 7))
    g = jax.random.normal(k[3], (3, 5, 7))

    def plain(x, a, b):
        return jnp.sum(((x @ a) @ b) * g)

    def custom(x, a, b):
        return jnp.sum(lora_product(x, a, b) * g)

    np.testing.assert_allclose(custom(x, a, b), plain(x, a, b), rtol=1e-5)
    for want, got in zip(jax.grad(plain, (0, 1, 2))(x, a, b), jax.jit(jax.grad(custom, (0, 1, 2)))(x, a, b)):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("fn,spec", [(base_matmul, "...i,io->...o"), (tied_head_matmul, "...i,oi->...o")])
def test_base_products_gradients_match_plain_autodiff(fn, spec):
    k = jax.random.split(jax.random.PRNGKey(4), 3)
    x = jax.random.normal(k[0], (3, 5, 12))
    w = jax.random.normal(k[1], (12, 7) if spec.endswith("io->...o") else (7, 12))
    g = jax.random.normal(k[2], (3, 5, 7))

    def plain(x, w):
        return jnp.sum(jnp.einsum(spec, x, w) * g)

    def custom(x, w):
        return jnp.sum(fn(x, w) * g)

    np.testing.assert_allclose(custom(x, w), plain(x, w), rtol=1e-5)
    for want, got in zip(jax.grad(plain, (0, 1))(x, w), jax.jit(jax.grad(custom, (0, 1)))(x, w)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    # bf16 weights: the backward multiplies in bf16 with fp32 accumulation, close to the fp32 result
    gx = jax.jit(jax.grad(custom))(x.astype(jnp.bfloat16), w.astype(jnp.bfloat16))
    assert gx.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(gx, np.float32), np.asarray(jax.grad(plain)(x, w)), rtol=0.05, atol=0.1)


@pytest.mark.parametrize("tied", [True, False])
def test_head_logprobs_value_and_gradients_match_plain_autodiff(tied):
    """The vocabulary head's hand-written backward (softmax minus one-hot) equals autodiff of
    log_softmax + take_along_axis, for h and for the weight, tied ("oi") and untied ("io")."""
    k = jax.random.split(jax.random.PRNGKey(5), 4)
    vocab, hidden, temperature = 50, 8, 0.7
    w = jax.random.normal(k[0], (vocab, hidden) if tied else (hidden, vocab))
    h = jax.random.normal(k[1], (3, 4, hidden))
    targets = jax.random.randint(k[2], (3, 4), 0, vocab)
    g = jax.random.normal(k[3], (3, 4))
    cfg = dataclasses.replace(CFG, vocab_size=vocab, hidden_size=hidden, tie_word_embeddings=tied)

    def custom(h, w):
        params = {"embed_tokens": {"embedding": w}} if tied else {"lm_head": {"kernel": w}}
        logp, entropy = head_logprobs(params, cfg, h, targets, temperature)
        return jnp.sum(logp * g) + jnp.sum(entropy)  # entropy is a metric: no gradient

    def plain(h, w):
        logp = jax.nn.log_softmax((h @ w.T if tied else h @ w) / temperature, axis=-1)
        entropy = -jnp.sum(jnp.exp(logp) * logp)
        return jnp.sum(jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0] * g) + jax.lax.stop_gradient(entropy)

    np.testing.assert_allclose(jax.jit(custom)(h, w), plain(h, w), rtol=1e-5)
    for want, got in zip(jax.grad(plain, (0, 1))(h, w), jax.jit(jax.grad(custom, (0, 1)))(h, w)):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_dropout_is_random_deterministic_and_off_by_default():
    params = init_params(CFG, jax.random.PRNGKey(9))
    lcfg = LoraConfig(rank=4, dropout=0.5)
    lora = _randomize_b(init_lora(CFG, lcfg, jax.random.PRNGKey(10)), jax.random.PRNGKey(11), std=0.5)
    tokens, mask = _batch(3)
    pos = positions_from_mask(mask)

    def run(rng=None, rate=0.0):
        return forward(params, CFG, tokens, pos, mask, lora=lora, lora_scale=lcfg.scale,
                       dropout_rng=rng, lora_dropout=rate)[0]

    plain = run()
    d1 = run(jax.random.PRNGKey(0), 0.5)
    d1b = run(jax.random.PRNGKey(0), 0.5)
    d2 = run(jax.random.PRNGKey(1), 0.5)
    assert np.array_equal(np.asarray(d1), np.asarray(d1b))
    assert float(jnp.abs(d1 - plain).max()) > 1e-4 and float(jnp.abs(d1 - d2).max()) > 1e-4
    assert np.array_equal(np.asarray(run(jax.random.PRNGKey(0), 0.0)), np.asarray(plain))


def test_bad_lora_config_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown LoRA targets"):
        LoraConfig(targets=("q", "lm_head"))
    with pytest.raises(ValueError, match="rank must be a positive integer"):
        LoraConfig(rank=0)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        LoraConfig(dropout=1.0)


def test_adapted_logits_match_peft(tmp_path):
    """Same adapter weights in PEFT (the reference implementation) give the same logits."""
    torch = pytest.importorskip("torch")
    peft = pytest.importorskip("peft")
    from model_fixtures import torch_logits

    from rftgym.trainers.loading import load_model

    ref = make_tiny_hf(str(tmp_path), "qwen3", seed=3)
    lm = load_model(str(tmp_path))
    lcfg = LoraConfig(rank=4, alpha=12.0, targets=("q", "k", "o", "up", "down"))
    lora = _randomize_b(init_lora(lm.cfg, lcfg, jax.random.PRNGKey(12)), jax.random.PRNGKey(13))
    pcfg = peft.LoraConfig(r=4, lora_alpha=12.0, target_modules=lcfg.hf_target_modules, lora_dropout=0.0)
    model = peft.get_peft_model(ref, pcfg).eval()
    with torch.no_grad():
        for block, modules in lora["layers"].items():
            for module, entry in modules.items():
                for i in range(lm.cfg.num_layers):
                    layer = getattr(model.base_model.model.model.layers[i], block)
                    lin = getattr(layer, module)
                    lin.lora_A["default"].weight.copy_(torch.tensor(np.asarray(entry["a"][i]).T))
                    lin.lora_B["default"].weight.copy_(torch.tensor(np.asarray(entry["b"][i]).T))
    tokens, mask = left_padded_batch(np.random.default_rng(7), [9, 5], 9, TINY_VOCAB)
    want = torch_logits(model, tokens, mask)
    got, _ = forward(lm.params, lm.cfg, tokens, positions_from_mask(mask), mask, lora=lora, lora_scale=lcfg.scale)
    assert rel_err(got, want, mask) <= 1e-4
    base, _ = forward(lm.params, lm.cfg, tokens, positions_from_mask(mask), mask)
    assert rel_err(base, want, mask) > 1e-3  # the adapters do change the logits
