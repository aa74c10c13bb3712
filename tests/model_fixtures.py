"""Shared helpers for the model tests: tiny random transformers checkpoints and a byte tokenizer.

torch and transformers' PyTorch models are used here only as the independent reference.
"""

from __future__ import annotations

import json
import os

import numpy as np

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] "
    "+ '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
TINY_VOCAB = 256 + len(SPECIAL) + 5  # a few spare ids the tokenizer never emits

# name -> (transformers config class name, kwargs)
TINY_CONFIGS = {
    "llama": ("LlamaConfig", dict(
        hidden_size=64, intermediate_size=112, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, rms_norm_eps=1e-5, rope_theta=500000.0, tie_word_embeddings=False,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 16},
        max_position_embeddings=128)),
    "llama_tied": ("LlamaConfig", dict(
        hidden_size=48, intermediate_size=96, num_hidden_layers=3, num_attention_heads=6,
        num_key_value_heads=2, rms_norm_eps=1e-5, rope_theta=100000.0, tie_word_embeddings=True,
        max_position_embeddings=128)),
    "qwen2": ("Qwen2Config", dict(
        hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=1, rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=True,
        max_position_embeddings=128, use_sliding_window=False)),
    "qwen3": ("Qwen3Config", dict(
        hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=24, rms_norm_eps=1e-6, rope_theta=1000000.0,
        tie_word_embeddings=False, max_position_embeddings=128, use_sliding_window=False)),
}


def tiny_tokenizer():
    """A byte-level tokenizer: 256 byte tokens + ChatML special tokens (ids 256..258)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    alphabet = bytes_to_unicode()
    vocab = {alphabet[b]: b for b in range(256)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL])
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|im_end|>",
                                   bos_token="<|endoftext|>", chat_template=CHATML)


def make_tiny_hf(folder: str, name: str, seed: int = 0, dtype="float32"):
    """Save a randomly initialised tiny transformers model + tokenizer into `folder`.

    All weights (norm scales and biases included) are random so that every parameter matters.
    Returns the torch model (eval mode, fp32).
    """
    import torch
    import transformers

    cls_name, kwargs = TINY_CONFIGS[name]
    cfg = getattr(transformers, cls_name)(vocab_size=TINY_VOCAB, bos_token_id=256, eos_token_id=258,
                                          pad_token_id=258, **kwargs)
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen) * (0.1 if p.ndim == 1 else 0.08)
            if pname.endswith("norm.weight"):
                p.copy_(1.0 + noise)
            else:
                p.copy_(noise)
    model.eval()
    os.makedirs(folder, exist_ok=True)
    model.save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    with open(os.path.join(folder, "config.json")) as f:
        assert json.load(f)["model_type"] in ("llama", "qwen2", "qwen3")
    return model


def left_padded_batch(rng: np.random.Generator, lengths, total: int, vocab: int):
    """tokens/mask [B, total] with row i holding lengths[i] random tokens at its right end."""
    b = len(lengths)
    tokens = np.full((b, total), 258, np.int32)
    mask = np.zeros((b, total), np.int32)
    for i, n in enumerate(lengths):
        tokens[i, total - n:] = rng.integers(0, vocab, n)
        mask[i, total - n:] = 1
    return tokens, mask


def torch_logits(model, tokens, mask):
    """Reference logits from transformers with explicit positions (cumsum(mask) - 1)."""
    import torch

    t = torch.tensor(np.asarray(tokens), dtype=torch.long)
    m = torch.tensor(np.asarray(mask), dtype=torch.long)
    pos = (m.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        return model(input_ids=t, attention_mask=m, position_ids=pos).logits.float().numpy()


def rel_err(a, b, mask=None) -> float:
    """max |a - b| / max |b| over the (optionally masked) rows."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if mask is not None:
        sel = np.asarray(mask).astype(bool)
        a, b = a[sel], b[sel]
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def jit_forward():
    """`model.forward` jitted with the config (and dropout rate) static, as callers use it."""
    import jax

    from rftgym.trainers.model import forward

    return jax.jit(forward, static_argnums=1, static_argnames=("lora_dropout", "remat"))



jforward = jit_forward()
