"""Sampling replies from a Hugging Face model: left-padded batches through ``generate``.

Rows may be restricted to an ``ActionTrie`` (constrained decoding): the allowed ids per step
are handed to ``generate`` via ``prefix_allowed_tokens_fn`` and recorded by the rollout so
training applies the same restriction.
"""

from __future__ import annotations

from typing import Any

import torch

from pawkit.config import RolloutConfig
from pawkit.rollout.constrained import ActionTrie


class Generator:
    """Left-padded batched sampling with HF ``generate``; optionally restricted to a trie."""

    def __init__(self, model, tokenizer, cfg: RolloutConfig):
        self.model, self.tokenizer, self.cfg = model, tokenizer, cfg
        self._whole_vocab: list[int] | None = None

    def encode(self, text: str) -> list[int]:
        if self.cfg.chat_template and self.tokenizer.chat_template:
            ids = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True
            )
            ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
            return list(ids)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    @torch.no_grad()
    def generate(
        self, prompts: list[list[int]], tries: list[ActionTrie | None], temperature: float
    ) -> list[list[int]]:
        out: list[list[int]] = []
        size = self.cfg.generation_batch_size
        for start in range(0, len(prompts), size):
            out.extend(self._generate(prompts[start : start + size], tries[start : start + size], temperature))
        return out

    def _generate(self, prompts, tries, temperature) -> list[list[int]]:
        tok, model = self.tokenizer, self.model
        eos, pad = tok.eos_token_id, tok.pad_token_id
        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), pad, dtype=torch.long)
        attention = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, p in enumerate(prompts):
            input_ids[i, width - len(p) :] = torch.tensor(p)
            attention[i, width - len(p) :] = 1
        kwargs: dict[str, Any] = dict(
            max_new_tokens=self.cfg.max_new_tokens, pad_token_id=pad, eos_token_id=eos,
        )
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature, top_p=self.cfg.top_p, top_k=0)
        else:
            kwargs.update(do_sample=False)
        if any(t is not None for t in tries):
            kwargs["prefix_allowed_tokens_fn"] = lambda b, ids: self._allowed(tries[b], ids[width:].tolist())
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        sequences = model.generate(input_ids=input_ids.to(device), attention_mask=attention.to(device), **kwargs)
        model.train(was_training)
        responses = []
        for row in sequences[:, width:].tolist():
            cut = row.index(eos) + 1 if eos in row else len(row)
            responses.append(row[:cut])
        return responses

    def _allowed(self, trie: ActionTrie | None, generated: list[int]) -> list[int]:
        if trie is None:  # an unconstrained row in a mixed batch: built once, not per token
            if self._whole_vocab is None:
                self._whole_vocab = list(range(len(self.tokenizer)))
            return self._whole_vocab
        eos = self.tokenizer.eos_token_id
        if eos in generated:  # finished rows keep emitting padding
            return [self.tokenizer.pad_token_id]
        return trie.allowed(generated) or [eos]
