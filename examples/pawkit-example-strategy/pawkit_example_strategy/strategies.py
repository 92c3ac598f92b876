"""The strategies themselves (they import torch); ``__init__`` registers them lazily by name.

Each takes one ``pawkit.strategies.StrategyContext`` (docs/strategies.md): ``ctx.rows`` (one
row per transition: texts, rewards, entropies, token counts), ``ctx.groups``, ``ctx.cfg`` (the
``paw`` section), ``ctx.options`` (the strategy's own validated options), ``ctx.step``,
``ctx.generator``, and ``ctx.record`` for metrics.
"""

from __future__ import annotations

import difflib
import math

import torch
from pydantic import BaseModel, Field

from pawkit.strategies import StrategyContext, keep_count


def squared_gap(ctx: StrategyContext) -> torch.Tensor:
    """λ_g = λ0 · (1 − R̄_g / R_max)²: nearly-solved groups get almost no world-model loss."""
    gap = (1.0 - ctx.group_mean_returns / ctx.max_return).clamp(min=0.0)
    return ctx.cfg.lambda0 * gap**2


def middle_entropy(ctx: StrategyContext) -> torch.Tensor:
    """Keep the ⌈κ·N⌉ transitions closest to the median entropy (ties: lower index first)."""
    entropies = ctx.entropies
    n = len(entropies)
    mask = torch.zeros(n, dtype=torch.bool)
    keep = keep_count(n, ctx.cfg.keep_ratio)
    if keep:
        distance = (entropies - entropies.median()).abs()
        order = sorted(range(n), key=lambda i: (float(distance[i]), i))
        mask[order[:keep]] = True
    return mask


def observation_change(ctx: StrategyContext) -> torch.Tensor:
    """Keep the ⌈κ·N⌉ transitions whose next observation differs most from the current one.

    Change = 1 − difflib similarity of the two texts; ties: lower index first."""
    rows = ctx.rows
    change = [1.0 - difflib.SequenceMatcher(None, before, after or "").ratio()
              for before, after in zip(rows.observation_text, rows.next_observation_text)]
    order = sorted(range(len(rows)), key=lambda i: (-change[i], i))
    mask = torch.zeros(len(rows), dtype=torch.bool)
    mask[order[: keep_count(len(rows), ctx.cfg.keep_ratio)]] = True
    ctx.record("mean_change", sum(change) / max(len(change), 1))  # -> paw/observation_change/mean_change
    return mask


class StepDecay:
    """Reward-adaptive λ_g halved every paw.options.half_life updates (stateful, resumable).

    λ_g = λ0·(1 − R̄_g / R_max) · 0.5^(k / half_life), k = updates weighted so far: the WM loss
    fades as training goes on. k is saved in checkpoints and restored on resume."""

    class Options(BaseModel):
        half_life: float = Field(10.0, gt=0, allow_inf_nan=False, description="updates after which λ has halved")

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, ctx: StrategyContext) -> torch.Tensor:
        decay = math.pow(0.5, self.calls / ctx.options.half_life)
        self.calls += 1
        ctx.record("decay", decay)  # -> paw/step_decay/decay in metrics.jsonl
        return ctx.cfg.lambda0 * (1.0 - ctx.group_mean_returns / ctx.max_return) * decay

    def state_dict(self) -> dict:
        return {"calls": self.calls}

    def load_state_dict(self, state: dict) -> None:
        self.calls = int(state["calls"])
