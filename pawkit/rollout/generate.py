"""Sampling replies from a Hugging Face model: left-padded batches through ``generate``.

The sampling distribution is exactly the one training scores (PPO's ratio is only honest
then): ``generate`` runs with an explicit generation config built from pawkit's
``RolloutConfig`` alone — nothing is inherited from a checkpoint's ``generation_config.json``
(a shipped ``repetition_penalty: 1.1`` would otherwise sample through a processor training never
applies) — and the only logits transform, ``sampling_logits`` (temperature, then top-p), is the
same function the training forward applies to action positions. Rows may be restricted to an
``ActionTrie`` (constrained decoding): the allowed ids per step go to ``generate`` via
``prefix_allowed_tokens_fn`` and are recorded by the rollout so training applies the same
restriction.

Env-provided text is tokenised as plain text (``split_special_tokens``): an observation holding
``<|im_end|>`` must not become a real stop token. Only the chat template adds special tokens.
"""

from __future__ import annotations

import contextlib
from typing import Any, NamedTuple

import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList, TopPLogitsWarper

from pawkit.config import RolloutConfig
from pawkit.rollout.constrained import ActionTrie
from pawkit.rollout.tokens import plain_ids


class Generator:
    """Left-padded batched sampling with HF ``generate``; optionally restricted to a trie."""

    def __init__(self, model, tokenizer, cfg: RolloutConfig):
        self.model, self.tokenizer, self.cfg = model, tokenizer, cfg
        self._whole_vocab: list[int] | None = None
        self._template: tuple[list[int], list[int]] | None = None

    def encode(self, text: str) -> list[int]:
        """Prompt ids: the chat template's own tokens around ``text`` tokenised as plain text."""
        head, tail = self.template_parts()
        return head + plain_ids(self.tokenizer, text) + tail

    def template_parts(self) -> tuple[list[int], list[int]]:
        """Ids the chat template puts before and after the user message (empty without one)."""
        if self._template is None:
            if self.cfg.chat_template and self.tokenizer.chat_template:
                marker = "\x00PAWKIT-USER-MESSAGE\x00"
                rendered = self.tokenizer.apply_chat_template(
                    [{"role": "user", "content": marker}], add_generation_prompt=True, tokenize=False
                )
                before, _, after = rendered.partition(marker)
                self._template = (
                    self.tokenizer(before, add_special_tokens=False)["input_ids"],
                    self.tokenizer(after, add_special_tokens=False)["input_ids"],
                )
            else:
                self._template = ([], [])
        return list(self._template[0]), list(self._template[1])

    @torch.no_grad()
    def generate(
        self, prompts: list[list[int]], tries: list[ActionTrie | None], temperature: float
    ) -> list[list[int]]:
        """Response ids per prompt (EOS kept when the model stopped); ``temperature`` 0 = greedy."""
        return self.sample(prompts, tries, temperature).ids

    @torch.no_grad()
    def sample(self, prompts: list[list[int]], tries: list[ActionTrie | None], temperature: float) -> "Sampled":
        """Response ids, and per response token the sampler's log-prob and the entropy of the
        distribution it was drawn from (nats; lists of the same length as the ids).

        That distribution is the model's after the constraint, temperature and top-p — exactly
        what the training forward computes at action positions (≤1e-5 in float32,
        tests/test_sampling.py), so with one PPO epoch these ARE the old log-probs and the PaW
        selector's entropies. With ``temperature`` 0 they are the restricted model's at
        temperature 1 (the greedy pick's log-prob).
        """
        out = Sampled([], [], [])
        size = self.cfg.generation_batch_size
        for start in range(0, len(prompts), size):
            part = self._generate(prompts[start : start + size], tries[start : start + size], temperature)
            for mine, theirs in zip(out, part):
                mine.extend(theirs)
        return out

    def _generate(self, prompts, tries, temperature) -> "Sampled":
        tok, model = self.tokenizer, self.model
        eos, pad = tok.eos_token_id, tok.pad_token_id
        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), pad, dtype=torch.long)
        attention = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, p in enumerate(prompts):
            input_ids[i, width - len(p) :] = torch.tensor(p)
            attention[i, width - len(p) :] = 1
        recorder = _LogprobRecorder(temperature if temperature > 0 else 1.0, self.cfg.top_p if temperature > 0 else 1.0)
        config = GenerationConfig(
            max_new_tokens=self.cfg.max_new_tokens, pad_token_id=pad, eos_token_id=eos, do_sample=temperature > 0,
            # temperature and top-p are applied by `recorder` (the function training mirrors),
            # so generate's own warpers are all neutral:
            temperature=1.0, top_p=1.0, top_k=0,
        )
        kwargs: dict[str, Any] = {}
        if any(t is not None for t in tries):
            kwargs["prefix_allowed_tokens_fn"] = lambda b, ids: self._allowed(tries[b], ids[width:].tolist())
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        try:
            with _no_inherited_generation_config(model):
                sequences = model.generate(
                    input_ids=input_ids.to(device), attention_mask=attention.to(device), generation_config=config,
                    logits_processor=LogitsProcessorList([recorder]), **kwargs,
                )
        finally:
            model.train(was_training)
        chosen, entropies = recorder.finish(sequences)
        out = Sampled([], [], [])
        for row, lp, ent in zip(sequences[:, width:].tolist(), chosen.tolist(), entropies.tolist()):
            cut = row.index(eos) + 1 if eos in row else len(row)
            out.ids.append(row[:cut])
            out.logprobs.append(lp[:cut])
            out.entropies.append(ent[:cut])
        return out

    def _allowed(self, trie: ActionTrie | None, generated: list[int]) -> list[int]:
        if trie is None:  # an unconstrained row in a mixed batch: built once, not per token
            if self._whole_vocab is None:
                self._whole_vocab = list(range(len(self.tokenizer)))
            return self._whole_vocab
        eos = self.tokenizer.eos_token_id
        if eos in generated:  # finished rows keep emitting padding
            return [self.tokenizer.pad_token_id]
        return trie.allowed(generated) or [eos]


def sampling_logits(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """The sampler's logits transform, shared with training: ``logits / T``, then top-p.

    ``logits`` is ``[N, V]`` (already restricted by the constrained decoder, if any). Top-p is
    transformers' ``TopPLogitsWarper`` (nucleus sampling, Holtzman et al. 2020): ids outside the
    smallest set whose probability reaches ``top_p`` get ``-inf``. The nucleus follows the
    logits it is given, so with several PPO epochs it is the current policy's own nucleus.
    """
    if temperature != 1.0:
        logits = logits / temperature
    if top_p < 1.0:
        logits = TopPLogitsWarper(top_p=top_p)(None, logits)
    return logits


class TurnLost(RuntimeError):
    """Raised by an engine's ``sample`` when it could not generate this turn but has recovered
    for the next (a vLLM server that died and was restarted). The rollout ends the episodes of
    that turn as env errors (``rollout/env_errors`` and ``rollout/engine_lost_episodes``, the
    message in ``env_errors.log``; they do not count towards ``trainer.max_env_error_rate``) and
    carries on; an engine that cannot recover raises its own one-line error instead."""


class Sampled(NamedTuple):
    """Per prompt: the response ids, each token's sampled log-prob and its distribution's entropy (nats)."""

    ids: list[list[int]]
    logprobs: list[list[float]]
    entropies: list[list[float]]


class _LogprobRecorder(LogitsProcessor):
    """Last logits processor of ``generate``: applies ``sampling_logits`` and records the
    log-prob of each token drawn from the result and the entropy of that distribution (scores
    of step k are read at step k+1, once the drawn token is known, so only one ``[B, V]`` slice
    is ever kept)."""

    def __init__(self, temperature: float, top_p: float):
        self.temperature, self.top_p = temperature, top_p
        self._previous: torch.Tensor | None = None
        self._chosen: list[torch.Tensor] = []
        self._entropy: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self._take(input_ids[:, -1])
        scores = sampling_logits(scores, self.temperature, self.top_p)
        logp = torch.log_softmax(scores.float(), dim=-1)
        p = logp.exp()
        # as pawkit.train.losses: ids with p = 0 (constrained or cut by top-p) contribute 0, not NaN
        self._entropy.append((-(p * logp.masked_fill(p == 0, 0.0)).sum(-1)).cpu())
        self._previous = logp
        return scores

    def _take(self, tokens: torch.Tensor) -> None:
        if self._previous is not None:
            self._chosen.append(self._previous.gather(-1, tokens.unsqueeze(-1)).squeeze(-1).cpu())
            self._previous = None

    def finish(self, sequences: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, new tokens]`` log-probs and entropies (finished rows' padding included; callers
        cut at EOS)."""
        self._take(sequences[:, -1])
        if not self._chosen:
            empty = torch.zeros((sequences.shape[0], 0))
            return empty, empty
        return torch.stack(self._chosen, dim=1), torch.stack(self._entropy[: len(self._chosen)], dim=1)


@contextlib.contextmanager
def _no_inherited_generation_config(model):
    """``generate`` fills every option left unset from ``model.generation_config`` (the
    checkpoint's ``generation_config.json``); a blank one there means nothing is inherited."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    saved = getattr(base, "generation_config", None)
    base.generation_config = GenerationConfig()
    try:
        yield
    finally:
        base.generation_config = saved
