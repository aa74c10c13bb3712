"""The batched KV-cache sampler: greedy parity with transformers, log-probs, stops, determinism."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from model_fixtures import make_tiny_hf
from rftgym.trainers.loading import load_model
from rftgym.trainers.lora import LoraConfig, init_lora
from rftgym.trainers.model import sequence_logprobs
from rftgym.trainers.sampler import Sampler, _categorical, _nucleus

EOS = 258


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("llama_tied"))
    make_tiny_hf(folder, "llama_tied", seed=11)
    lm = load_model(folder)
    return lm, Sampler(lm.cfg, lm.tokenizer, max_prompt_len=64, prompt_buckets=(16, 64),
                       new_token_buckets=(16, 32))


PROMPTS = [[5, 6, 7, 8, 9, 10, 11], [40, 41], [100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110]]


def _row_logprobs(lm, out, lora=None, lora_scale=1.0):
    """Recompute the completion log-probs with the trainer's sequence_logprobs (full forward)."""
    width = max(len(p) for p in out.prompt_ids)
    n, m = out.completion_ids.shape
    tokens = np.full((n, width + m), EOS, np.int32)
    mask = np.zeros_like(tokens)
    for r, p in enumerate(out.prompt_ids):
        tokens[r, width - len(p):width], mask[r, width - len(p):width] = p, 1
    tokens[:, width:], mask[:, width:] = out.completion_ids, out.completion_mask
    logp, _ = jax.jit(sequence_logprobs, static_argnums=1)(lm.params, lm.cfg, tokens, mask, lora=lora,
                                                           lora_scale=lora_scale)
    return np.asarray(logp)[:, width - 1:]


def test_sampled_logprobs_match_sequence_logprobs(tiny):
    lm, sampler = tiny
    out = sampler.generate(lm.params, PROMPTS, num_samples=2, max_new_tokens=12, temperature=1.0,
                           key=jax.random.PRNGKey(0))
    assert out.completion_ids.shape == (6, 12) and out.logprobs.dtype == np.float32
    assert [len(p) for p in out.prompt_ids] == [7, 7, 2, 2, 11, 11]
    want = _row_logprobs(lm, out)
    sel = out.completion_mask > 0
    np.testing.assert_allclose(out.logprobs[sel], want[sel], atol=1e-4)
    assert np.all(out.logprobs[~sel] == 0) and np.all(out.completion_ids[~sel] == EOS)


def test_logprobs_with_lora_and_top_k_are_of_the_raw_policy(tiny):
    lm, sampler = tiny
    lcfg = LoraConfig(rank=2, alpha=4.0)
    lora = jax.tree.map(lambda x: x + 0.05, init_lora(lm.cfg, lcfg, jax.random.PRNGKey(1)))
    out = sampler.generate(lm.params, PROMPTS[:2], lora=lora, lora_scale=lcfg.scale, max_new_tokens=10,
                           temperature=0.7, top_k=5, key=jax.random.PRNGKey(2))
    want = _row_logprobs(lm, out, lora=lora, lora_scale=lcfg.scale)
    sel = out.completion_mask > 0
    np.testing.assert_allclose(out.logprobs[sel], want[sel], atol=1e-4)


def test_deterministic_given_key(tiny):
    lm, sampler = tiny
    kw = dict(num_samples=3, max_new_tokens=10, temperature=1.0, top_p=0.9)
    a = sampler.generate(lm.params, PROMPTS, key=jax.random.PRNGKey(7), **kw)
    b = sampler.generate(lm.params, PROMPTS, key=jax.random.PRNGKey(7), **kw)
    c = sampler.generate(lm.params, PROMPTS, key=jax.random.PRNGKey(8), **kw)
    assert np.array_equal(a.completion_ids, b.completion_ids) and np.array_equal(a.logprobs, b.logprobs)
    assert not np.array_equal(a.completion_ids, c.completion_ids)
    # the samples of one prompt differ from each other
    assert len({tuple(r) for r in a.completion_ids[:3]}) > 1


def test_greedy_samples_share_the_prompt_and_agree(tiny):
    lm, sampler = tiny
    one = sampler.generate(lm.params, PROMPTS, num_samples=1, max_new_tokens=8, temperature=0.0)
    three = sampler.generate(lm.params, PROMPTS, num_samples=3, max_new_tokens=8, temperature=0.0)
    for i in range(len(PROMPTS)):
        for j in range(3):
            assert np.array_equal(three.completion_ids[3 * i + j], one.completion_ids[i])
            assert three.prompt_ids[3 * i + j] == PROMPTS[i]
    top1 = sampler.generate(lm.params, PROMPTS, max_new_tokens=8, temperature=1.3, top_k=1,
                            key=jax.random.PRNGKey(3))
    nucleus = sampler.generate(lm.params, PROMPTS, max_new_tokens=8, temperature=1.0, top_p=1e-6,
                               key=jax.random.PRNGKey(4))
    assert np.array_equal(top1.completion_ids, one.completion_ids)
    assert np.array_equal(nucleus.completion_ids, one.completion_ids)


def test_stop_tokens_end_rows_and_are_excluded_from_text(tiny):
    lm, sampler = tiny
    free = sampler.generate(lm.params, PROMPTS, max_new_tokens=12, temperature=0.0)
    # stop on the token greedy decoding emits 4th in row 0
    stop = int(free.completion_ids[0, 3])
    out = sampler.generate(lm.params, PROMPTS, max_new_tokens=12, temperature=0.0, stop_token_ids=[stop])
    first = int(np.nonzero(free.completion_ids[0] == stop)[0][0])
    assert out.finish_reasons[0] == "stop" and out.lengths[0] == first + 1
    assert out.completion_mask[0].sum() == first + 1 and out.completion_ids[0, first] == stop
    assert np.all(out.completion_ids[0, first + 1:] == EOS)
    assert out.texts[0] == lm.tokenizer.decode(free.completion_ids[0, :first].tolist())
    for r in range(len(PROMPTS)):
        if out.finish_reasons[r] == "length":
            assert out.lengths[r] == 12 and stop not in out.completion_ids[r].tolist()


def test_config_eos_ids_stop_rows_and_loop_exits_early(tiny):
    lm, sampler = tiny
    free = sampler.generate(lm.params, PROMPTS, max_new_tokens=12, temperature=0.0)
    first = [int(r[0]) for r in free.completion_ids]
    # every row's first greedy token is an EOS id of this config: all rows stop at step 0
    cfg = lm.cfg.replace(eos_token_id=[EOS] + first)
    out = Sampler(cfg, lm.tokenizer, max_prompt_len=64).generate(lm.params, PROMPTS, max_new_tokens=12,
                                                                temperature=0.0)
    assert out.finish_reasons == ["stop"] * 3 and list(out.lengths) == [1, 1, 1]
    assert out.stats["decode_steps"] == 1 and out.texts == ["", "", ""]
    assert np.array_equal(out.completion_ids[:, 0], first) and np.all(out.completion_ids[:, 1:] == EOS)
    # without those ids the rows run to the length limit or their own EOS
    assert free.stats["decode_steps"] > 1


def test_shapes_are_bucketed(tiny):
    lm, sampler = tiny
    sampler.generate(lm.params, [[1, 2, 3]], max_new_tokens=5, temperature=0.0)
    n_compiled = sampler._decode._cache_size()
    # same buckets: 1-16 tokens, 1 prompt, <= 16 new tokens
    for prompt, m in (([4, 5, 6, 7, 8, 9, 10, 11, 12], 9), ([9] * 16, 16)):
        sampler.generate(lm.params, [prompt], max_new_tokens=m, temperature=0.0)
    assert sampler._decode._cache_size() == n_compiled
    out = sampler.generate(lm.params, [[1, 2, 3]], max_new_tokens=5, temperature=0.0)
    assert out.completion_ids.shape == (1, 5)


def test_bad_arguments_are_clear_errors(tiny):
    lm, sampler = tiny
    with pytest.raises(ValueError, match="prompt 1 is empty"):
        sampler.generate(lm.params, [[1], []])
    with pytest.raises(ValueError, match="more than max_prompt_len=64"):
        sampler.generate(lm.params, [[1] * 65])
    with pytest.raises(ValueError, match="flat list of ints"):
        sampler.generate(lm.params, [1, 2, 3])
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        sampler.generate(lm.params, [[1]], temperature=-1.0)
    with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\]"):
        sampler.generate(lm.params, [[1]], top_p=0.0)
    with pytest.raises(ValueError, match="token ids outside"):
        sampler.generate(lm.params, [[10**6]])


def test_categorical_and_nucleus_are_exact():
    logits = jax.random.normal(jax.random.PRNGKey(3), (1, 700)) * 2
    probs = np.asarray(jax.nn.softmax(logits[0]))
    keys = jax.random.split(jax.random.PRNGKey(5), 40000)
    draws = np.asarray(jax.jit(jax.vmap(lambda k: _categorical(logits, k[None])[0]))(keys))
    emp = np.bincount(draws, minlength=700) / len(draws)
    assert 0.5 * np.abs(emp - probs).sum() < 0.05  # sampling noise at 40k draws is ~0.03
    assert np.all(probs[np.unique(draws)] > 0)
    x = jax.random.normal(jax.random.PRNGKey(4), (3, 700))
    for top_p in (0.3, 0.9, 0.99):  # bisection path (the top 256 do not reach 0.99 mass)
        kept = np.isfinite(np.asarray(_nucleus(x, top_p))).sum(-1)
        xs = np.sort(np.asarray(x, np.float64), -1)[:, ::-1]
        ps = np.exp(xs - np.log(np.exp(xs).sum(-1, keepdims=True)))
        want = np.maximum(((np.cumsum(ps, -1) - ps) < top_p).sum(-1), 1)
        assert np.array_equal(kept, want)


def test_bf16_params_and_bf16_decoding(tiny):
    lm, sampler = tiny
    bf16 = jax.tree.map(lambda x: x.astype(jnp.bfloat16), lm.params)
    out = sampler.generate(bf16, PROMPTS, max_new_tokens=6, temperature=1.0, key=jax.random.PRNGKey(0))
    assert out.completion_ids.shape == (3, 6) and np.all(np.isfinite(out.logprobs))
    # fp32 params sampled with bf16 weights: log-probs are those of the bf16-cast policy
    fast = Sampler(lm.cfg, lm.tokenizer, max_prompt_len=64, prompt_buckets=(16, 64), new_token_buckets=(16,),
                   decode_dtype="bfloat16")
    out = fast.generate(lm.params, PROMPTS, max_new_tokens=6, temperature=1.0, key=jax.random.PRNGKey(0))
    assert fast._layer_cache[1]["layers"][0]["mlp"]["up_proj"]["kernel"].dtype == jnp.bfloat16
    want = _row_logprobs(type(lm)(lm.cfg, bf16, lm.tokenizer, ""), out)
    sel = out.completion_mask > 0
    np.testing.assert_allclose(out.logprobs[sel], want[sel], atol=2e-2)


def test_smollm2_greedy_matches_transformers_generate():
    """Token-for-token equality with transformers' greedy generate on the embedded default."""
    torch = pytest.importorskip("torch")
    from transformers import AutoModelForCausalLM

    from rftgym.trainers.loading import EMBEDDED_DEFAULT, embedded_default_dir

    lm = load_model(EMBEDDED_DEFAULT)
    ref = AutoModelForCausalLM.from_pretrained(embedded_default_dir(), dtype=torch.float32).eval()
    questions = ["What is 12 + 7?", "Name three primary colors.",
                 "Write one sentence about the moon and the tides it causes."]
    prompts = [lm.tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True,
                                                tokenize=True) for q in questions]
    prompts = [p["input_ids"] if hasattr(p, "keys") else list(p) for p in prompts]
    sampler = Sampler(lm.cfg, lm.tokenizer, max_prompt_len=64)
    out = sampler.generate(lm.params, prompts, max_new_tokens=20, temperature=0.0)
    for i, p in enumerate(prompts):
        with torch.no_grad():
            want = ref.generate(torch.tensor([p]), attention_mask=torch.ones(1, len(p), dtype=torch.long),
                                max_new_tokens=20, do_sample=False, eos_token_id=lm.cfg.eos_token_id,
                                pad_token_id=lm.cfg.pad_token_id)[0, len(p):].tolist()
        got = out.completion_ids[i, :out.lengths[i]].tolist()
        assert got == want, (questions[i], lm.tokenizer.decode(got), lm.tokenizer.decode(want))
    assert out.finish_reasons[0] in ("stop", "length") and out.texts[0].strip()
