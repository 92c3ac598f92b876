"""The RL loss math, readable top to bottom: token log-probs, logit restriction, PPO-clip, KL.

Everything here is a pure tensor function so it can be checked against hand-computed numbers
(tests/test_losses.py) independently of the model and the trainer.
"""

from __future__ import annotations

import torch


def restrict_logits(logits: torch.Tensor, allowed_token_mask: torch.Tensor) -> torch.Tensor:
    """Set disallowed logits to ``-inf`` (``allowed_token_mask`` is bool, broadcastable to logits).

    Training must see the same restriction as the constrained decoder did, otherwise the PPO
    ratio compares a restricted sampling distribution with an unrestricted one.
    """
    if allowed_token_mask.dtype != torch.bool:
        raise ValueError(f"allowed_token_mask must be a bool tensor, got {allowed_token_mask.dtype}")
    if not bool(allowed_token_mask.any(-1).all()):
        raise ValueError("allowed_token_mask leaves a position with no allowed token; allow at least one id per position")
    return logits.masked_fill(~allowed_token_mask, float("-inf"))


def _slice_stats(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """log-softmax, softmax, target log-prob and entropy of one slice, in at least float32."""
    logp = torch.log_softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)), dim=-1)
    p = logp.exp()
    # 0·(−inf) would be NaN: ids with p = 0 (restricted away, or underflow) contribute 0.
    logp_safe = logp.masked_fill(p == 0, 0.0)
    entropy = -(p * logp_safe).sum(-1)
    return logp_safe, p, logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1), entropy


class _ChunkedLogprobEntropy(torch.autograd.Function):
    """Forward and backward both walk the sequence slice by slice.

    Autograd through plain slices would keep every slice's softmax alive until backward (2-3×
    the logits) and give each slice a full-size gradient buffer; here only the logits are saved
    and the gradient is written once, slice by slice:
    d log p_y / dz = onehot(y) − p and dH/dz = −p·(log p + H).
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, targets: torch.Tensor, step: int):
        logprobs, entropies = [], []
        for start in range(0, logits.shape[1], step):
            _, _, lp, ent = _slice_stats(logits[:, start : start + step], targets[:, start : start + step])
            logprobs.append(lp)
            entropies.append(ent)
        logprob, entropy = torch.cat(logprobs, dim=1), torch.cat(entropies, dim=1)
        ctx.save_for_backward(logits, targets, entropy)
        ctx.step = step
        return logprob, entropy

    @staticmethod
    def backward(ctx, grad_logprob: torch.Tensor, grad_entropy: torch.Tensor):
        logits, targets, entropy = ctx.saved_tensors
        grad = torch.empty(logits.shape, dtype=logits.dtype, device=logits.device)
        for start in range(0, logits.shape[1], ctx.step):
            part = slice(start, start + ctx.step)
            logp, p, _, _ = _slice_stats(logits[:, part], targets[:, part])
            g_lp, g_ent = grad_logprob[:, part, None].to(p.dtype), grad_entropy[:, part, None].to(p.dtype)
            g = -g_ent * p * (logp + entropy[:, part, None].to(p.dtype)) - g_lp * p
            g.scatter_add_(-1, targets[:, part, None], g_lp)
            grad[:, part] = g
        return grad, None, None


class _ChunkedLogprob(torch.autograd.Function):
    """Log-prob of each target only — no entropy, no materialised log-softmax — slice by slice:
    ``log p_y = z_y − logsumexp(z)``, backward ``d log p_y / dz = onehot(y) − softmax(z)``.
    About a third of ``_ChunkedLogprobEntropy``'s work per position: what the world-model
    targets need (nobody reads an entropy there)."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, targets: torch.Tensor, step: int):
        wide = torch.promote_types(logits.dtype, torch.float32)
        lse, chosen = [], []
        for start in range(0, logits.shape[0], step):
            part = logits[start : start + step].to(wide)
            lse.append(torch.logsumexp(part, dim=-1))
            chosen.append(part.gather(-1, targets[start : start + step, None])[:, 0])
        lse_all = torch.cat(lse)
        ctx.save_for_backward(logits, targets, lse_all)
        ctx.step = step
        return torch.cat(chosen) - lse_all

    @staticmethod
    def backward(ctx, grad_logprob: torch.Tensor):
        logits, targets, lse = ctx.saved_tensors
        grad = torch.empty(logits.shape, dtype=logits.dtype, device=logits.device)
        for start in range(0, logits.shape[0], ctx.step):
            part = slice(start, start + ctx.step)
            g_lp = grad_logprob[part, None].to(lse.dtype)
            g = -g_lp * (logits[part].to(lse.dtype) - lse[part, None]).exp()
            g.scatter_add_(-1, targets[part, None], g_lp)
            grad[part] = g
        return grad, None, None


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor, chunk_size: int = 1024) -> torch.Tensor:
    """Log-prob of each target, ``[N]`` (float32 or wider), from flat ``logits [N, V]`` and
    ``targets [N]``, ``chunk_size`` positions at a time in forward and backward. ``-inf``
    logits are allowed (they get probability 0 and gradient 0)."""
    if logits.dim() != 2 or targets.shape != logits.shape[:1]:
        raise ValueError(f"need logits [N, V] and targets [N], got {tuple(logits.shape)} and {tuple(targets.shape)}")
    if logits.shape[0] == 0:
        return logits.new_zeros((0,), dtype=torch.promote_types(logits.dtype, torch.float32))
    return _ChunkedLogprob.apply(logits, targets.long(), max(1, chunk_size))


def token_logprobs_and_entropy(
    logits: torch.Tensor,
    targets: torch.Tensor,
    chunk_size: int = 1024,
    allowed_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-prob of each target and full-vocabulary entropy, ``[B, T]`` each (float32 or wider).

    Works on slices of about ``chunk_size`` positions (``B × t ≤ chunk_size``, at least one
    position) along the sequence, in forward and backward, so the ``[B, T, V]`` log-softmax is
    never held at once (SmolLM2's 49k vocabulary dominates memory otherwise). Slicing along T is
    a view, so the trainer's non-contiguous ``logits[:, :-1]`` is not copied either.
    ``allowed_mask`` (bool, broadcastable to ``logits``) applies ``restrict_logits`` first;
    ``-inf`` logits contribute 0 to the entropy.
    """
    if logits.dim() != 3 or targets.shape != logits.shape[:2]:
        raise ValueError(f"need logits [B, T, V] and targets [B, T], got {tuple(logits.shape)} and {tuple(targets.shape)}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be ≥ 1, got {chunk_size}")
    batch, length, _ = logits.shape
    if length == 0:
        empty = logits.new_zeros((batch, 0), dtype=torch.promote_types(logits.dtype, torch.float32))
        return empty, empty.clone()
    if allowed_mask is not None:
        logits = restrict_logits(logits, allowed_mask)
    step = max(1, chunk_size // max(batch, 1))
    return _ChunkedLogprobEntropy.apply(logits, targets.long(), step)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over ``mask`` (token-mean); 0 when the mask is empty."""
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

    Per token, r = exp(logπ − logπ_old): loss = max(−A·r, −A·clip(r, 1−ε_low, 1+ε_high)), and
    for A < 0 additionally min(·, −A·c), so a huge ratio on a bad action cannot blow up the
    update (verl's dual clip). Returns (loss, fraction of tokens where the clipped branch won).

    With ``algorithm.ppo_epochs=1`` (every shipped config) the trainer calls this on the
    parameters that produced ``old_logprobs``: r = 1 exactly, no clip acts, the fraction is 0
    and the loss is −A token-mean, whose gradient is the plain policy gradient −A·∇log π.
    The clip only matters from the second epoch on (pawkit/train/update.py).
    """
    if clip_ratio_c <= 1.0:
        raise ValueError(f"clip_ratio_c must be > 1 (dual clip), got {clip_ratio_c}")
    mask = mask.bool()
    # Padding positions may hold anything (even -inf): neutralise them before exp.
    delta = torch.where(mask, logprobs - old_logprobs, torch.zeros_like(logprobs))
    ratio = torch.exp(delta.clamp(-20.0, 20.0))
    advantages = torch.where(mask, advantages, torch.zeros_like(advantages))
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - clip_low, 1.0 + clip_high)
    loss = torch.maximum(unclipped, clipped)
    dual = torch.minimum(loss, -advantages * clip_ratio_c)  # caps the loss when A < 0 and r ≫ 1
    loss = torch.where(advantages < 0, dual, loss)
    clip_fraction = masked_mean((clipped > unclipped).float(), mask).detach()
    return masked_mean(loss, mask), clip_fraction


def low_var_kl(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """k3 estimator of KL(π‖π_ref) per token: exp(δ) − δ − 1 with δ = log π_ref − log π, clamped to [−10, 10]."""
    delta = (ref_logprobs - logprobs).clamp(-20.0, 20.0)  # an inf exp would give NaN gradients through the clamp below
    return (torch.exp(delta) - delta - 1.0).clamp(-10.0, 10.0)
