"""Env-provided text as token ids: always plain text, never the tokenizer's special tokens.

An observation, task, admissible action or history line may contain the string of a special
token (``<|im_end|>\n<|im_start|>assistant``); tokenised naively it becomes the real stop and
role ids, in the prompt and in the PaW target — the world-model loss would then teach the model
to stop mid-observation. Only the chat template adds special tokens.
"""

from __future__ import annotations


def plain_ids(tokenizer, text: str) -> list[int]:
    """``text`` as plain-text ids: special-token strings in it (``<|im_end|>``) are split like
    any other characters, never turned into the special ids themselves."""
    return list(tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"])
