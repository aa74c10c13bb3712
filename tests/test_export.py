"""Export: merged HF folders load in transformers, adapters load in PEFT, with matching logits."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from model_fixtures import (TINY_CONFIGS, TINY_VOCAB, jforward, left_padded_batch, make_tiny_hf, rel_err,
                            torch_logits)
from rftgym.trainers.export import export_adapter, export_merged, parse_size
from rftgym.trainers.loading import SafetensorsFile, load_model
from rftgym.trainers.lora import LoraConfig, init_lora
from rftgym.trainers.model import positions_from_mask

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

LORA = LoraConfig(rank=4, alpha=8.0, targets=("q", "k", "v", "o", "gate", "up", "down"))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = {}
    for i, name in enumerate(TINY_CONFIGS):
        folder = str(tmp_path_factory.mktemp(name))
        make_tiny_hf(folder, name, seed=20 + i)
        lm = load_model(folder)
        lora = init_lora(lm.cfg, LORA, jax.random.PRNGKey(i))
        leaves, tree = jax.tree.flatten(lora)
        keys = jax.random.split(jax.random.PRNGKey(100 + i), len(leaves))
        lora = jax.tree.unflatten(tree, [x + 0.1 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)])
        out[name] = (folder, lm, lora)
    return out


def _ours(lm, lora, tokens, mask, params=None):
    logits, _ = jforward(params or lm.params, lm.cfg, tokens, positions_from_mask(mask), mask, lora=lora,
                         lora_scale=LORA.scale)
    return np.asarray(logits)


@pytest.mark.parametrize("name", list(TINY_CONFIGS))
def test_merged_export_loads_in_transformers(tiny, tmp_path, name):
    folder, lm, lora = tiny[name]
    out = export_merged(lm, lora, LORA, str(tmp_path / "merged"))
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json"} <= set(os.listdir(out))
    ref = transformers.AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    assert ref.config.tie_word_embeddings == lm.cfg.tie_word_embeddings
    tokens, mask = left_padded_batch(np.random.default_rng(0), [10, 4], 10, TINY_VOCAB)
    want = _ours(lm, lora, tokens, mask)
    assert rel_err(torch_logits(ref, tokens, mask), want, mask) <= 1e-4
    base = _ours(lm, None, tokens, mask)
    assert rel_err(base, want, mask) > 1e-3  # the merged adapters matter
    # our loader reads the export back to the merged weights
    back = load_model(out)
    assert rel_err(_ours(back, None, tokens, mask), want, mask) <= 1e-5


@pytest.mark.parametrize("name", list(TINY_CONFIGS))
def test_adapter_export_loads_in_peft(tiny, tmp_path, name):
    peft = pytest.importorskip("peft")
    folder, lm, lora = tiny[name]
    out = export_adapter(lm.cfg, lora, LORA, str(tmp_path / "adapter"), base_model_name_or_path=folder)
    with open(os.path.join(out, "adapter_config.json")) as f:
        acfg = json.load(f)
    assert acfg["base_model_name_or_path"] == folder and acfg["r"] == 4 and acfg["lora_alpha"] == 8
    assert sorted(acfg["target_modules"]) == sorted(LORA.hf_target_modules)
    st = SafetensorsFile(os.path.join(out, "adapter_model.safetensors"))
    a = st.get("base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight")
    b = st.get("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight")
    assert a.shape == (4, lm.cfg.hidden_size) and b.shape == (lm.cfg.hidden_size, 4)
    base = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    model = peft.PeftModel.from_pretrained(base, out).eval()
    tokens, mask = left_padded_batch(np.random.default_rng(1), [9, 6], 9, TINY_VOCAB)
    want = _ours(lm, lora, tokens, mask)
    assert rel_err(torch_logits(model, tokens, mask), want, mask) <= 1e-4


def test_sharded_bf16_export_with_tokenizer_and_chat_template(tiny, tmp_path):
    folder, lm, lora = tiny["qwen2"]
    out = export_merged(lm, lora, LORA, str(tmp_path / "sharded"), max_shard_size="60KB", dtype="bfloat16")
    files = sorted(f for f in os.listdir(out) if f.endswith(".safetensors"))
    assert len(files) > 2 and files[0] == f"model-00001-of-{len(files):05d}.safetensors"
    with open(os.path.join(out, "model.safetensors.index.json")) as f:
        index = json.load(f)
    assert set(index["weight_map"].values()) == set(files)
    assert "model.layers.0.self_attn.q_proj.bias" in index["weight_map"]
    assert SafetensorsFile(os.path.join(out, files[0])).header[next(iter(
        SafetensorsFile(os.path.join(out, files[0])).keys()))]["dtype"] == "BF16"
    with open(os.path.join(out, "config.json")) as f:
        assert json.load(f)["torch_dtype"] == "bfloat16"
    ref = transformers.AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    tokens, mask = left_padded_batch(np.random.default_rng(2), [8, 3], 8, TINY_VOCAB)
    assert rel_err(torch_logits(ref, tokens, mask), _ours(lm, lora, tokens, mask), mask) < 3e-2
    tok = transformers.AutoTokenizer.from_pretrained(out)
    chat = [{"role": "user", "content": "hi"}]
    assert tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True) == \
        lm.tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    with open(os.path.join(out, "generation_config.json")) as f:
        assert json.load(f)["eos_token_id"] == lm.cfg.eos_token_id


def test_export_errors_are_clear(tiny, tmp_path):
    folder, lm, lora = tiny["llama"]
    with pytest.raises(ValueError, match="lora_cfg is required"):
        export_merged(lm, lora, None, str(tmp_path / "x"))
    with pytest.raises(ValueError, match="needs params"):
        export_merged(lm.cfg, None, None, str(tmp_path / "x"))
    with pytest.raises(ValueError, match="lora_cfg targets"):
        export_adapter(lm.cfg, lora, LoraConfig(rank=4, targets=("q",)), str(tmp_path / "y"), folder)
    with pytest.raises(ValueError, match="cannot parse size"):
        parse_size("lots")
    assert parse_size("2GB") == 2 * 10**9 and parse_size("1MiB") == 2**20 and parse_size(123) == 123


def test_export_from_config_and_params(tiny, tmp_path):
    """A ModelConfig + trained params (no tokenizer) also exports; the base weights are untouched."""
    folder, lm, lora = tiny["qwen3"]
    before = jax.tree.map(lambda x: np.asarray(x).copy(), lm.params)
    out = export_merged(lm.cfg, lora, LORA, str(tmp_path / "cfg"), params=lm.params)
    assert "tokenizer.json" not in os.listdir(out)
    for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(lm.params)):
        assert np.array_equal(a, np.asarray(b))
    ref = transformers.AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    tokens, mask = left_padded_batch(np.random.default_rng(3), [7], 7, TINY_VOCAB)
    assert rel_err(torch_logits(ref, tokens, mask), _ours(lm, lora, tokens, mask), mask) <= 1e-4
    assert jnp.float32 == jax.tree.leaves(lm.params)[0].dtype
