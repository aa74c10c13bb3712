"""Logits of the JAX decoder against transformers' PyTorch models (the reference)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from model_fixtures import (TINY_CONFIGS, TINY_VOCAB, jforward, left_padded_batch, make_tiny_hf,
                            rel_err, torch_logits)
from rftgym.trainers.config import ModelConfig
from rftgym.trainers.loading import load_model
from rftgym.trainers.model import (forward, init_cache, init_params, positions_from_mask,
                                   sequence_logprobs)

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """name -> (torch reference model, LoadedModel)"""
    out = {}
    for name in TINY_CONFIGS:
        folder = str(tmp_path_factory.mktemp(name))
        ref = make_tiny_hf(folder, name, seed=len(name))
        out[name] = (ref, load_model(folder))
    return out


@pytest.mark.parametrize("name", list(TINY_CONFIGS))
def test_tiny_logits_match_transformers(tiny, name):
    ref, lm = tiny[name]
    tokens, mask = left_padded_batch(np.random.default_rng(1), [14, 9, 3], 14, TINY_VOCAB)
    want = torch_logits(ref, tokens, mask)
    got, cache = jforward(lm.params, lm.cfg, tokens, positions_from_mask(mask), mask)
    assert cache is None
    assert got.dtype == jnp.float32 and got.shape == want.shape
    assert rel_err(got, want, mask) <= 1e-4


def test_config_features_are_exercised(tiny):
    assert tiny["llama"][1].cfg.rope_scaling["rope_type"] == "llama3"
    assert tiny["llama_tied"][1].cfg.tie_word_embeddings and "lm_head" not in tiny["llama_tied"][1].params
    assert tiny["qwen2"][1].cfg.attention_bias and "bias" in tiny["qwen2"][1].params["layers"]["self_attn"]["q_proj"]
    q3 = tiny["qwen3"][1].cfg
    assert q3.qk_norm and q3.head_dim * q3.num_heads != q3.hidden_size


def test_rope_scaling_matters(tiny):
    """Dropping the Llama-3 scaling breaks parity, so the parity test does check it."""
    ref, lm = tiny["llama"]
    tokens, mask = left_padded_batch(np.random.default_rng(2), [14], 14, TINY_VOCAB)
    cfg = dataclasses.replace(lm.cfg, rope_scaling=None)
    got, _ = jforward(lm.params, cfg, tokens, positions_from_mask(mask), mask)
    assert rel_err(got, torch_logits(ref, tokens, mask), mask) > 1e-2


@pytest.mark.parametrize("name", ["llama", "qwen3"])
def test_cached_prefill_and_decode_match_full_forward(tiny, name):
    _, lm = tiny[name]
    tokens, mask = left_padded_batch(np.random.default_rng(3), [10, 6], 10, TINY_VOCAB)
    full, _ = jforward(lm.params, lm.cfg, tokens, positions_from_mask(mask), mask)
    prompt_len = 6
    pos = positions_from_mask(mask)
    cache = init_cache(lm.cfg, 2, 12)
    logits, cache = forward(lm.params, lm.cfg, tokens[:, :prompt_len], pos[:, :prompt_len], mask[:, :prompt_len],
                            cache=cache, cache_index=0)
    steps = [logits]
    for t in range(prompt_len, 10):
        step, cache = jforward(lm.params, lm.cfg, tokens[:, t:t + 1], pos[:, t:t + 1], mask[:, t:t + 1],
                              cache=cache, cache_index=jnp.int32(t))
        steps.append(step)
    got = jnp.concatenate(steps, axis=1)
    assert rel_err(got, full, mask) <= 1e-5
    assert np.array_equal(np.asarray(cache["mask"][:, :10]), mask)


def test_bf16_params_stay_close_to_fp32(tiny, tmp_path):
    ref, lm = tiny["qwen2"]
    tokens, mask = left_padded_batch(np.random.default_rng(4), [12, 5], 12, TINY_VOCAB)
    bf16 = jax.tree.map(lambda x: x.astype(jnp.bfloat16), lm.params)
    got, _ = jforward(bf16, lm.cfg, tokens, positions_from_mask(mask), mask)
    assert got.dtype == jnp.float32
    assert rel_err(got, torch_logits(ref, tokens, mask), mask) < 5e-2


def test_sequence_logprobs_match_torch_log_softmax(tiny):
    ref, lm = tiny["llama_tied"]
    # left-padded prompt + right-padded completion in one row
    tokens, mask = left_padded_batch(np.random.default_rng(5), [11, 7], 13, TINY_VOCAB)
    mask[1, -2:] = 0
    logits = torch.tensor(torch_logits(ref, tokens, mask))
    want = torch.log_softmax(logits, -1)[:, :-1].gather(-1, torch.tensor(tokens[:, 1:]).long()[..., None])[..., 0]
    want_ent = -(torch.softmax(logits, -1) * torch.log_softmax(logits, -1)).sum(-1)[:, :-1]
    logp, ent = sequence_logprobs(lm.params, lm.cfg, tokens, mask)
    keep = mask[:, 1:] * mask[:, :-1]
    np.testing.assert_allclose(np.asarray(logp)[keep > 0], want.numpy()[keep > 0], atol=2e-4)
    np.testing.assert_allclose(np.asarray(ent)[keep > 0], want_ent.numpy()[keep > 0], atol=2e-4)
    logp_c, ent_c = sequence_logprobs(lm.params, lm.cfg, tokens, mask, logits_chunk_size=5)
    np.testing.assert_allclose(logp_c, logp, atol=1e-5)
    np.testing.assert_allclose(ent_c, ent, atol=1e-5)


def test_remat_and_chunking_keep_gradients(tiny):
    _, lm = tiny["qwen3"]
    tokens, mask = left_padded_batch(np.random.default_rng(6), [9, 6], 9, TINY_VOCAB)

    def loss(params, **kw):
        logp, _ = sequence_logprobs(params, lm.cfg, tokens, mask, **kw)
        return jnp.sum(logp * mask[:, 1:])

    g_plain = jax.jit(jax.grad(loss))(lm.params)
    g_opt = jax.jit(jax.grad(lambda p: loss(p, remat=True, logits_chunk_size=4)))(lm.params)
    for a, b in zip(jax.tree.leaves(g_plain), jax.tree.leaves(g_opt)):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-4)


def test_init_params_shapes_and_jit():
    cfg = ModelConfig(architecture="qwen2", vocab_size=50, hidden_size=32, intermediate_size=48, num_layers=2,
                      num_heads=4, num_kv_heads=2, head_dim=8, attention_bias=True, tie_word_embeddings=True)
    params = init_params(cfg, jax.random.PRNGKey(0), jnp.bfloat16)
    assert sum(x.size for x in jax.tree.leaves(params)) == cfg.num_params()
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(params))
    tokens = jnp.ones((2, 5), jnp.int32)
    fn = jax.jit(forward, static_argnums=1)
    logits, _ = fn(params, cfg, tokens, positions_from_mask(tokens), tokens)
    assert logits.shape == (2, 5, 50) and logits.dtype == jnp.float32


def test_unsupported_config_is_a_clear_error():
    with pytest.raises(ValueError, match="unsupported model_type 'gpt2'"):
        ModelConfig.from_hf({"model_type": "gpt2", "vocab_size": 10})
    with pytest.raises(ValueError, match="missing required key 'hidden_size'"):
        ModelConfig.from_hf({"model_type": "llama", "vocab_size": 10})
    with pytest.raises(ValueError, match="unsupported rope scaling type 'yarn'"):
        ModelConfig.from_hf({"model_type": "llama", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 8,
                             "num_hidden_layers": 1, "num_attention_heads": 2,
                             "rope_scaling": {"rope_type": "yarn", "factor": 2.0}})


def test_smollm2_logits_match_transformers():
    """The embedded default (SmolLM2-135M-Instruct) against transformers on the same folder."""
    from transformers import AutoModelForCausalLM

    from rftgym.trainers.loading import EMBEDDED_DEFAULT, embedded_default_dir

    lm = load_model(EMBEDDED_DEFAULT)
    ref = AutoModelForCausalLM.from_pretrained(embedded_default_dir(), dtype=torch.float32).eval()
    texts = ["The capital of France is", "def fibonacci(n):\n    ", "2 + 3 = 5. 7 + 8 ="]
    rows = [lm.tokenizer(t)["input_ids"] for t in texts]
    width = max(map(len, rows))
    tokens = np.full((len(rows), width), lm.cfg.pad_token_id, np.int32)
    mask = np.zeros_like(tokens)
    for i, r in enumerate(rows):
        tokens[i, width - len(r):], mask[i, width - len(r):] = r, 1
    want = torch_logits(ref, tokens, mask)
    got, _ = jforward(lm.params, lm.cfg, tokens, positions_from_mask(mask), mask)
    assert rel_err(got, want, mask) <= 1e-4
