"""Dropout off for the RL passes, with the model left in train mode.

An RL update scores tokens, it does not regularise: the old log-probs, the reference's and the
loss's own must all be the deterministic policy that sampled them (the rollout runs in eval
mode), or two old-log-prob passes over one batch differ and the KL at step 1 is not 0. Eval
mode would do that, but it also switches off gradient checkpointing (transformers checkpoints
a layer only ``if self.gradient_checkpointing and self.training``), so the model stays in
train mode and every dropout probability is set to 0 instead, then restored:

- ``nn.Dropout``-family modules (``p``), which includes PEFT's ``lora_dropout``;
- float attributes of modules whose name says dropout (``attention_dropout``, ``dropout``,
  ``resid_pdrop``, ``dropout_p`` …), which HF attention passes as ``dropout=`` whenever
  ``module.training``; and MoE ``router_jitter_noise``-style noise applied in training only;
- the same attributes on every model config reachable from the modules (a few HF models read
  ``self.config.attention_dropout`` at forward time).

Nothing is left changed afterwards: a checkpoint saved later keeps its config's values.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch

_WORDS = ("drop", "jitter")  # dropout, pdrop, drop_p, attn_drop, dropout_prob, router_jitter_noise …


def _is_rate(name: str, value: object) -> bool:
    return isinstance(value, float) and value != 0.0 and any(w in name.lower() for w in _WORDS)


def _configs(config, seen: set[int]) -> Iterator:
    """A config and its sub-configs (``text_config`` …), each once."""
    if config is None or id(config) in seen or not hasattr(config, "to_dict"):
        return
    seen.add(id(config))
    yield config
    for value in list(vars(config).values()):
        yield from _configs(value, seen)


@contextlib.contextmanager
def dropout_disabled(*models: torch.nn.Module | None):
    """Every dropout of ``models`` at 0 inside the block (``None`` entries are skipped)."""
    changed: list[tuple[object, str, float]] = []
    seen_configs: set[int] = set()
    try:
        for model in models:
            if model is None:
                continue
            for module in model.modules():
                if isinstance(module, torch.nn.modules.dropout._DropoutNd) and module.p:
                    changed.append((module, "p", module.p))
                    module.p = 0.0
                owners = [module, *_configs(getattr(module, "config", None), seen_configs)]
                for owner in owners:
                    for name, value in list(vars(owner).items()):
                        if _is_rate(name, value):
                            changed.append((owner, name, value))
                            setattr(owner, name, 0.0)
        yield
    finally:
        for owner, name, value in reversed(changed):
            setattr(owner, name, value)
