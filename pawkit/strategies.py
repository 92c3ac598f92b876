"""The typed call signatures of the strategy plugins (what a custom strategy must accept).

All five are plain callables, looked up by name in the registries of ``pawkit.plugins``.
Keeping them here (not in the trainer) lets a plugin package type-check against pawkit
without importing the training loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import torch

    from pawkit.config import AlgorithmConfig, PawConfig


class Selector(Protocol):
    """Which transitions of the update batch get a world-model loss.

    ``entropies[i]`` is transition i's mean action-token entropy. Returns a bool mask of the
    same length. Ties must be broken deterministically (lower index first).
    """

    def __call__(self, entropies: "torch.Tensor", cfg: "PawConfig", generator: "torch.Generator") -> "torch.Tensor": ...


class WorldModelLoss(Protocol):
    """Per-transition loss from the log-probs of the next-observation target tokens.

    ``target_logprobs`` and ``mask`` are ``[B, T]``; returns ``[B]`` (mean over each row's
    masked tokens; a row with no target tokens gives 0).
    """

    def __call__(self, target_logprobs: "torch.Tensor", mask: "torch.Tensor", cfg: "PawConfig") -> "torch.Tensor": ...


class Balancer(Protocol):
    """Weight λ_g of each rollout group's world-model loss from its members' episode returns.

    ``group_mean_returns`` is ``[G]``; ``max_return`` is the env's maximum episode return.
    """

    def __call__(self, group_mean_returns: "torch.Tensor", max_return: float, cfg: "PawConfig") -> "torch.Tensor": ...


@dataclass
class StepRows:
    """One row per environment step of a rollout batch (verl-agent layout: a step is a sample).

    ``reward`` is the env reward of that step; ``episode_return`` the sum over its trajectory;
    ``anchor`` the observation the action was taken from (GiGPO's state key); ``invalid`` the
    parser's verdict (penalised by ``penalty`` in the scores). Rows of a trajectory appear in
    step order.
    """

    group_ids: list[str]
    traj_ids: list[str]
    step_index: list[int]
    reward: list[float]
    episode_return: list[float]
    anchor: list[str]
    invalid: list[bool]
    penalty: float = 0.1

    def __len__(self) -> int:
        return len(self.group_ids)


class AdvantageEstimator(Protocol):
    """Scalar advantage per row (broadcast over that row's response tokens by the trainer)."""

    def __call__(self, rows: StepRows, cfg: "AlgorithmConfig") -> "torch.Tensor": ...


def keep_count(n: int, keep_ratio: float) -> int:
    """⌈κ·N⌉, the number of transitions the built-in selectors keep."""
    return min(n, math.ceil(keep_ratio * n - 1e-9))
