"""Built-in PaW selectors: which transitions of the update batch get a world-model loss.

PaW keeps the transitions where the policy was most uncertain (highest mean action-token
entropy): their consequences carry the most information. The other three exist for the
paper's ablations. Each takes a ``StrategyContext`` whose ``rows`` are the eligible
transitions (``ctx.entropies``: their mean action-token entropies, nats), returns a bool mask
``[N]`` over them and breaks ties by lower index first, so a run is reproducible whatever the
sort implementation.
"""

from __future__ import annotations

import torch

from pawkit.strategies import StrategyContext, keep_count


def _check(entropies: torch.Tensor) -> None:
    if entropies.dim() != 1:
        raise ValueError(f"a selector needs a 1-D tensor of per-transition entropies, got shape {tuple(entropies.shape)}")


def _mask(n: int, chosen: torch.Tensor) -> torch.Tensor:
    mask = torch.zeros(n, dtype=torch.bool)
    mask[chosen.cpu()] = True
    return mask


def _ranked(ctx: StrategyContext, highest: bool) -> torch.Tensor:
    entropies = ctx.entropies
    _check(entropies)
    n = entropies.numel()
    # NaN (a broken forward) ranks last either way rather than poisoning the order.
    scores = entropies.detach().float().cpu().nan_to_num(nan=float("-inf") if highest else float("inf"))
    # A stable sort keeps equal entropies in index order: ties go to the lower index.
    order = torch.sort(scores, descending=highest, stable=True).indices
    return _mask(n, order[: keep_count(n, ctx.cfg.keep_ratio)])


def entropy(ctx: StrategyContext) -> torch.Tensor:
    """Top ⌈κ·N⌉ transitions by mean action-token entropy (PaW's default)."""
    return _ranked(ctx, highest=True)


def low_entropy(ctx: StrategyContext) -> torch.Tensor:
    """Bottom ⌈κ·N⌉ transitions by entropy (ablation: learn what the agent is sure about)."""
    return _ranked(ctx, highest=False)


def all_transitions(ctx: StrategyContext) -> torch.Tensor:
    """Every transition (κ = 1, ignores keep_ratio)."""
    return torch.ones(len(ctx.rows), dtype=torch.bool)


def random_subset(ctx: StrategyContext) -> torch.Tensor:
    """⌈κ·N⌉ transitions uniformly at random from the given generator (same count as entropy)."""
    n, generator = len(ctx.rows), ctx.generator
    order = torch.randperm(n, generator=generator, device=generator.device)
    return _mask(n, order[: keep_count(n, ctx.cfg.keep_ratio)])
