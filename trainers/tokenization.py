"""Chat-template helpers over a transformers tokenizer (stable across transformers 4.x / 5.x)."""

from __future__ import annotations


def chat_prompt_text(tokenizer, messages: list[dict], *, tools: list[dict] | None = None,
                     add_generation_prompt: bool = True, **template_kwargs) -> str:
    """The prompt string the model's chat template renders for `messages` (and `tools`)."""
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("this tokenizer has no chat template; build the prompt text yourself")
    return tokenizer.apply_chat_template(messages, tools=tools, add_generation_prompt=add_generation_prompt,
                                         tokenize=False, **template_kwargs)


def chat_prompt_ids(tokenizer, messages: list[dict], *, tools: list[dict] | None = None,
                    add_generation_prompt: bool = True, **template_kwargs) -> list[int]:
    """Token ids of the rendered chat prompt (no extra BOS: the template writes its own special tokens)."""
    text = chat_prompt_text(tokenizer, messages, tools=tools, add_generation_prompt=add_generation_prompt,
                            **template_kwargs)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])
