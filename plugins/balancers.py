"""Built-in PaW balancers: the weight λ_g of each rollout group's world-model loss.

Reward-adaptive balancing gives failing groups more world-model supervision and groups that
already succeed none, so the auxiliary loss helps where the policy is stuck.
"""

from __future__ import annotations

import torch

from pawkit.config import PawConfig


def _check(group_mean_returns: torch.Tensor) -> None:
    if group_mean_returns.dim() != 1:
        raise ValueError(f"a balancer needs a 1-D tensor of group mean returns, got shape {tuple(group_mean_returns.shape)}")


def reward_adaptive(group_mean_returns: torch.Tensor, max_return: float, cfg: PawConfig) -> torch.Tensor:
    """λ_g = λ0·(1 − R̄_g / R_max), unclipped: a negative mean return gives more than λ0."""
    _check(group_mean_returns)
    if not max_return > 0:
        raise ValueError(
            f"reward_adaptive needs the env's maximum episode return > 0, got {max_return}; "
            "set the env's max_return or use paw.balancer=fixed"
        )
    return cfg.lambda0 * (1.0 - group_mean_returns.float() / max_return)


def fixed(group_mean_returns: torch.Tensor, max_return: float, cfg: PawConfig) -> torch.Tensor:
    """λ_g = λ0 for every group."""
    _check(group_mean_returns)
    return torch.full(group_mean_returns.shape, float(cfg.lambda0))


def none(group_mean_returns: torch.Tensor, max_return: float, cfg: PawConfig) -> torch.Tensor:
    """λ_g = 0: plain RL (the WM tokens are still scored for metrics)."""
    _check(group_mean_returns)
    return torch.zeros(group_mean_returns.shape)
