"""Built-in PaW world-model losses over next-observation target tokens.

Each maps ``target_logprobs`` / ``mask`` ``[B, T]`` to a per-transition loss ``[B]``: the
mean over that row's masked tokens, 0 for a row without any. Positions outside the mask are
zeroed BEFORE any arithmetic, so a ``-inf`` log-prob there (a constrained action position)
can never leak a NaN into the loss or its gradient.
"""

from __future__ import annotations

import torch

from pawkit.strategies import StrategyContext


def _check(target_logprobs: torch.Tensor, mask: torch.Tensor) -> None:
    if target_logprobs.shape != mask.shape or target_logprobs.dim() != 2:
        raise ValueError(
            f"a WM loss needs target_logprobs and mask of the same [B, T] shape, got "
            f"{tuple(target_logprobs.shape)} and {tuple(mask.shape)}"
        )


def _row_mean(per_token: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sum over the row's target tokens / their count (clipped tokens count too); 0 if none."""
    count = mask.sum(-1).to(per_token.dtype)
    return per_token.sum(-1) / count.clamp(min=1.0)


def _probs(target_logprobs: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mask = mask.bool()
    logp = target_logprobs.masked_fill(~mask, 0.0)  # zero grad and no inf outside the mask
    return logp, mask


def clipped_mae(target_logprobs: torch.Tensor, mask: torch.Tensor, ctx: StrategyContext) -> torch.Tensor:
    """ℓ = (1 − p)·[p ≤ ρ] averaged over all target tokens (PaW's noise-tolerant default)."""
    _check(target_logprobs, mask)
    logp, mask = _probs(target_logprobs, mask)
    p = logp.exp()
    # The indicator is a constant (detached comparison): tokens with p > ρ get exactly 0 gradient.
    keep = (p.detach() <= ctx.cfg.rho) & mask
    return _row_mean(torch.where(keep, 1.0 - p, torch.zeros_like(p)), mask)


def cross_entropy(target_logprobs: torch.Tensor, mask: torch.Tensor, ctx: StrategyContext) -> torch.Tensor:
    """Length-normalised cross-entropy −mean log p (the ECHO-style baseline)."""
    _check(target_logprobs, mask)
    logp, mask = _probs(target_logprobs, mask)
    return _row_mean(-logp, mask)


def mae(target_logprobs: torch.Tensor, mask: torch.Tensor, ctx: StrategyContext) -> torch.Tensor:
    """Mean absolute error 1 − p without clipping (cmae with ρ = 1)."""
    _check(target_logprobs, mask)
    logp, mask = _probs(target_logprobs, mask)
    return _row_mean(torch.where(mask, 1.0 - logp.exp(), torch.zeros_like(logp)), mask)
