"""The strategies themselves (they import torch); ``__init__`` registers them lazily by name."""

import math

import torch


def squared_gap(group_mean_returns: torch.Tensor, max_return: float, cfg) -> torch.Tensor:
    """λ_g = λ0 · (1 − R̄_g / R_max)²: nearly-solved groups get almost no world-model loss."""
    gap = (1.0 - group_mean_returns / max_return).clamp(min=0.0)
    return cfg.lambda0 * gap**2


def middle_entropy(entropies: torch.Tensor, cfg, generator: torch.Generator) -> torch.Tensor:
    """Keep the ⌈κ·N⌉ transitions closest to the median entropy (ties: lower index first)."""
    n = len(entropies)
    keep = min(n, math.ceil(cfg.keep_ratio * n - 1e-9))
    mask = torch.zeros(n, dtype=torch.bool)
    if keep:
        distance = (entropies - entropies.median()).abs()
        order = sorted(range(n), key=lambda i: (float(distance[i]), i))
        mask[order[:keep]] = True
    return mask
