"""Built-in PaW balancers: the weight λ_g of each rollout group's world-model loss.

Reward-adaptive balancing gives failing groups more world-model supervision and groups that
already succeed none, so the auxiliary loss helps where the policy is stuck. Each takes a
``StrategyContext`` (``ctx.group_mean_returns`` ``[G]``, ``ctx.max_return``) and returns λ_g ``[G]``.
"""

from __future__ import annotations

import torch

from pawkit.strategies import StrategyContext


def _check(group_mean_returns: torch.Tensor) -> None:
    if group_mean_returns.dim() != 1:
        raise ValueError(f"a balancer needs a 1-D tensor of group mean returns, got shape {tuple(group_mean_returns.shape)}")


def reward_adaptive(ctx: StrategyContext) -> torch.Tensor:
    """λ_g = λ0·(1 − R̄_g / R_max), unclipped: a negative mean return gives more than λ0."""
    group_mean_returns, max_return = ctx.group_mean_returns, ctx.max_return
    _check(group_mean_returns)
    if not max_return > 0:
        raise ValueError(
            f"reward_adaptive needs the env's maximum episode return > 0, got {max_return}; "
            "set the env's max_return or use paw.balancer=fixed"
        )
    return ctx.cfg.lambda0 * (1.0 - group_mean_returns.float() / max_return)


def fixed(ctx: StrategyContext) -> torch.Tensor:
    """λ_g = λ0 for every group."""
    return torch.full((len(ctx.groups),), float(ctx.cfg.lambda0))


def none(ctx: StrategyContext) -> torch.Tensor:
    """λ_g = 0: plain RL (the WM tokens are still scored for metrics)."""
    return torch.zeros(len(ctx.groups))
