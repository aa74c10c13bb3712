"""A toy task and a tiny random model for trainer tests.

Task: the user message is one letter; the reply earns 1.0 when it starts with that letter.
A random policy over the ~40-token character vocabulary starts near 0.03.

Model: a 2-layer Llama with random weights, a character-level tokenizer with a ChatML chat
template, written as a normal HF folder (config.json, model.safetensors, tokenizer files), so
the trainer loads it the same way it loads a real model.
"""

from __future__ import annotations

import json
import os
import string

import numpy as np

import rftgym

LETTERS = "abcdefgh"
SPECIALS = ["<|pad|>", "<|im_start|>", "<|im_end|>"]
CHARS = list(string.ascii_lowercase) + list(" \n:")
# minimal template: every message is "<|im_start|>" + content; the reply follows the user's
# letter directly, so a copy of the last prompt token is what earns reward
CHAT_TEMPLATE = "{% for m in messages %}<|im_start|>{{ m['content'] }}{% endfor %}"


@rftgym.reward_function
def starts_with_letter(messages, ground_truth=None, **_):
    """1.0 when the reply's first character is the requested letter."""
    reply = messages[-1]["content"]
    return 1.0 if reply[:1] == ground_truth else 0.0


def rows(letters: str = LETTERS) -> list[dict]:
    return [{"messages": [{"role": "user", "content": c}], "ground_truth": c, "task_id": f"letter-{c}"}
            for c in letters]


def write_dataset(path: str, letters: str = LETTERS) -> str:
    with open(path, "w") as f:
        for row in rows(letters):
            f.write(json.dumps(row) + "\n")
    return path


def make_tokenizer():
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIALS + CHARS)}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=None))
    core.decoder = decoders.Fuse()
    core.add_special_tokens(SPECIALS)
    tok = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<|pad|>", eos_token="<|im_end|>",
                                  bos_token="<|im_start|>")
    tok.chat_template = CHAT_TEMPLATE
    return tok


def model_config(num_layers: int = 2, hidden: int = 64):
    from rftgym.trainers.config import ModelConfig

    return ModelConfig(architecture="llama", vocab_size=64, hidden_size=hidden, intermediate_size=2 * hidden,
                       num_layers=num_layers, num_heads=4, num_kv_heads=2, head_dim=hidden // 4,
                       rope_theta=10000.0, tie_word_embeddings=False, max_position_embeddings=512,
                       bos_token_id=1, eos_token_id=2, pad_token_id=0)


def write_model(folder: str, seed: int = 0, num_layers: int = 2, hidden: int = 64) -> str:
    """A random-init model as a HF folder the trainer's loader reads."""
    import jax

    from rftgym.trainers.loading import hf_tensor_layout, write_safetensors
    from rftgym.trainers.model import init_params

    os.makedirs(folder, exist_ok=True)
    cfg = model_config(num_layers, hidden)
    params = init_params(cfg, jax.random.key(seed))
    # a wider output layer than the 0.02 default, so that moving the hidden state (all LoRA can
    # do) can make one token likely: max logit ~ |h| |w| = 8 x 0.8
    params["lm_head"]["kernel"] = params["lm_head"]["kernel"] * 5.0
    tensors = {}
    for t in hf_tensor_layout(cfg):
        leaf = params
        for k in t.path:
            leaf = leaf[k]
        arr = np.asarray(leaf if t.layer is None else leaf[t.layer], np.float32)
        tensors[t.hf_name] = np.ascontiguousarray(arr.T if t.transpose else arr)
    write_safetensors(os.path.join(folder, "model.safetensors"), tensors)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg.to_hf(), f)
    make_tokenizer().save_pretrained(folder)
    return folder


def env_spec_dict(dataset_path: str) -> dict:
    """The toy env as a config-file env table (evaluator imported from this module)."""
    return {"id": "rft/Custom-v0", "kwargs": {"dataset": dataset_path,
                                              "evaluator": "grpo_toy:starts_with_letter"}}


def enable_compile_cache() -> str:
    """Share compiled XLA programs between the tests' trainers (and their subprocesses)."""
    import tempfile

    import jax

    path = os.path.join(tempfile.gettempdir(), "rftgym-test-xla-cache")
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    return path


class TwoTurnLetters(rftgym.MultiTurnTextEnv):
    """Multi-turn toy: after the first reply the env says "again"; the episode ends after the
    second reply and scores the fraction of replies that start with the letter."""

    def __init__(self, **kwargs):
        super().__init__(rows(), None, max_turns=4, **kwargs)

    def respond(self, reply):
        if self.turns >= 2:
            return [], True
        return [{"role": "user", "content": "again"}], False

    def evaluate_episode(self, messages):
        letter = self._row["ground_truth"]
        replies = [m["content"] for m in messages if m["role"] == "assistant"]
        score = sum(r[:1] == letter for r in replies) / 2
        return rftgym.EvaluateResult(score=score, metrics={"turns": float(len(replies))})
