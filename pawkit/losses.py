"""The RL loss math, readable top to bottom: token log-probs, PPO-clip, low-variance KL."""

from __future__ import annotations

import torch


def token_logprobs_and_entropy(
    logits: torch.Tensor, targets: torch.Tensor, chunk_size: int = 1024
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-prob of each target and full-vocabulary entropy, ``[B, T]`` each.

    Works in chunks of positions so the ``[B, T, V]`` log-softmax is never held at once
    (SmolLM2's 49k vocabulary dominates memory otherwise). ``-inf`` logits (a constrained
    decoder's disallowed ids) contribute 0 to the entropy.
    """
    batch, length, vocab = logits.shape
    flat_logits = logits.reshape(-1, vocab)
    flat_targets = targets.reshape(-1)
    logprobs, entropies = [], []
    for start in range(0, flat_logits.shape[0], chunk_size):
        chunk = flat_logits[start : start + chunk_size]
        logp = torch.log_softmax(chunk, dim=-1)
        logprobs.append(logp.gather(-1, flat_targets[start : start + chunk_size, None]).squeeze(-1))
        p = logp.exp()
        entropies.append(-(p * logp.masked_fill(p == 0, 0.0)).sum(-1))
    return torch.cat(logprobs).view(batch, length), torch.cat(entropies).view(batch, length)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def ppo_clip_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    clip_ratio_c: float = 3.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO clipped surrogate with dual clip for negative advantages; token-mean over ``mask``.

    Returns (loss, fraction of tokens where the clipped branch was taken).
    """
    ratio = torch.exp((logprobs - old_logprobs).clamp(-20.0, 20.0))
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - clip_low, 1.0 + clip_high)
    loss = torch.maximum(unclipped, clipped)
    dual = torch.minimum(loss, -advantages * clip_ratio_c)  # caps the loss when A < 0 and ratio ≫ 1
    loss = torch.where(advantages < 0, dual, loss)
    clip_fraction = masked_mean((clipped > unclipped).float(), mask)
    return masked_mean(loss, mask), clip_fraction


def low_var_kl(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """k3 estimator of KL(π‖π_ref) per token: exp(δ) − δ − 1 with δ = log π_ref − log π, clamped."""
    delta = ref_logprobs - logprobs
    return (torch.exp(delta) - delta - 1.0).clamp(-10.0, 10.0)
