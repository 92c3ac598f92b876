"""Built-in advantage estimators: GRPO, GiGPO and RLOO as verl-agent computes them, and PPO's
GAE over a learned critic.

Every environment step is a sample (``StepRows``). Group statistics run over all step ROWS of
a group (verl-agent's ``compute_mean_std_cross_steps=True``), not one value per trajectory,
so long trajectories weigh more in the baseline: that is what verl-agent's published numbers
used. A row's score is its trajectory's episode return minus the invalid-action penalty of
that row only. Spec: the project reference gigpo.md, §2–6. ``ppo`` is not group-relative: it
reads the critic's values (``needs_values``) and the per-step rewards.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Hashable, Iterable

import torch

from pydantic import BaseModel, Field

from pawkit.strategies import StepRows, StrategyContext, gae

EPS = 1e-6


def _check(rows: StepRows) -> None:
    n = len(rows)
    fields = ("traj_ids", "step_index", "reward", "episode_return", "anchor", "invalid")
    bad = [f for f in fields if len(getattr(rows, f)) != n]
    if bad:
        raise ValueError(f"StepRows fields {', '.join(bad)} do not have one entry per row ({n} group_ids)")


def _buckets(keys: Iterable[Hashable]) -> list[list[int]]:
    """Row indices grouped by key, in order of first appearance."""
    out: dict[Hashable, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        out[key].append(i)
    return list(out.values())


def _scores(rows: StepRows) -> torch.Tensor:
    """Episode return minus the penalty on the invalid row itself (the token-level score sum)."""
    return torch.tensor(rows.scores(), dtype=torch.float64)


def _normalise(values: torch.Tensor, buckets: list[list[int]], by_std: bool, singleton_mean_is_value: bool) -> torch.Tensor:
    """(x − mean)/(std + ε) or x − mean within each bucket; unbiased std.

    A singleton bucket uses mean 0 / std 1 for episode groups (advantage = the raw score), but
    its own value as mean for step groups (advantage 0): verl-agent's two rules.
    """
    out = torch.zeros_like(values)
    for idx in buckets:
        x = values[idx]
        if len(idx) == 1:
            mean, std = (x[0] if singleton_mean_is_value else x.new_tensor(0.0)), x.new_tensor(1.0)
        else:
            mean, std = x.mean(), x.std(unbiased=True)
        out[idx] = (x - mean) / (std + EPS) if by_std else x - mean
    return out


def _episode_advantage(rows: StepRows, by_std: bool) -> torch.Tensor:
    return _normalise(_scores(rows), _buckets(rows.group_ids), by_std, singleton_mean_is_value=False)


def step_returns(rows: StepRows, gamma: float) -> torch.Tensor:
    """Discounted return R_t = r_t + γ·R_{t+1} within each trajectory (GiGPO Eq. 5), no penalty."""
    reward = torch.tensor(rows.reward, dtype=torch.float64)
    out = torch.zeros_like(reward)
    for idx in _buckets(zip(rows.group_ids, rows.traj_ids)):
        running = 0.0
        for i in sorted(idx, key=lambda i: rows.step_index[i], reverse=True):
            running = float(reward[i]) + gamma * running
            out[i] = running
    return out


def grpo(ctx: StrategyContext) -> torch.Tensor:
    """Episode score normalised within its group (over all step rows); std division per norm_by_std."""
    rows, cfg = ctx.rows, ctx.cfg
    _check(rows)
    return _episode_advantage(rows, cfg.norm_by_std).float()


def gigpo(ctx: StrategyContext) -> torch.Tensor:
    """Episode advantage + ω · step advantage over exact-match anchor-state groups (GiGPO Eq. 8)."""
    rows, cfg = ctx.rows, ctx.cfg
    _check(rows)
    by_std = cfg.gigpo_mode == "mean_std_norm"
    episode = _episode_advantage(rows, by_std)
    # The penalty hits the invalid row's own step return only; it is not discounted backwards.
    returns = step_returns(rows, cfg.gamma) - rows.penalty * torch.tensor(rows.invalid, dtype=torch.float64)
    step_groups = _buckets(zip(rows.group_ids, rows.anchor))  # anchors never match across tasks
    step = _normalise(returns, step_groups, by_std, singleton_mean_is_value=True)
    return (episode + cfg.step_advantage_weight * step).float()


def rloo(ctx: StrategyContext) -> torch.Tensor:
    """Score minus the mean of the OTHER rows of its group, n/(n−1)·(x − mean); a lone row keeps its score."""
    rows = ctx.rows
    _check(rows)
    scores = _scores(rows)
    out = scores.clone()
    for idx in _buckets(rows.group_ids):
        n = len(idx)
        if n > 1:
            out[idx] = n / (n - 1) * (scores[idx] - scores[idx].mean())
    return out.float()


class _PPOOptions(BaseModel):
    whiten: bool = Field(True, description="normalise the GAE advantages over the batch to mean 0, std 1 (verl's and "
                                           "cleanrl's default); the critic's value targets use the raw advantages")


def ppo(ctx: StrategyContext) -> torch.Tensor:
    """GAE over each trajectory's step rewards from a learned value head (critic); whitened over the batch.

    A_t from the critic's V(s_t) (Schulman et al. 2016, Eq. 16; ``pawkit.strategies.gae``) with
    γ = ``algorithm.gamma`` and λ = ``algorithm.gae_lambda``; ``options.whiten`` (default true).

    Declares ``needs_values``: the trainer then builds a value head (pawkit/train/critic.py),
    fills ``ctx.rows.values`` from a no-grad pass and trains the head on the GAE returns."""
    rows, cfg = ctx.rows, ctx.cfg
    _check(rows)
    advantages, _ = gae(rows, cfg.gamma, cfg.gae_lambda)
    out = torch.tensor(advantages, dtype=torch.float64)
    whiten = ctx.options.whiten if ctx.options is not None else True
    if whiten and len(out) > 1:
        out = (out - out.mean()) / (out.std(unbiased=True) + EPS)
    return out.float()


ppo.needs_values = True
ppo.Options = _PPOOptions
