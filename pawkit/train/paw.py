"""PaW: which transitions get a world-model loss, and with what weight.

The loss itself is computed in the trainer's single forward pass over
``[prompt ; response ; delimiter + next observation]``; this module decides the targets
(``wm_target_ids``) and the per-transition weights (``plan``) by calling the selector and
balancer plugins named in the config (through pawkit/train/strategy_calls.py, which checks
what they return). It never branches on their names.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from pawkit.config import PawConfig
from pawkit.rollout.tokens import plain_ids
from pawkit.strategies import GroupRows, StepRows
from pawkit.train.batching import TrainingSequence
from pawkit.train.metrics import Metrics

if TYPE_CHECKING:
    from pawkit.train.strategy_calls import RunStrategies


def wm_target_ids(tokenizer, next_observation_text: str | None, cfg: PawConfig) -> list[int]:
    """Token ids of ``delimiter + o_{t+1}``, truncated; empty = not eligible (no final observation)."""
    if not next_observation_text:
        return []
    ids = plain_ids(tokenizer, cfg.delimiter + next_observation_text)  # env text: never special ids
    return list(ids[: cfg.max_obs_tokens])


OWN_TARGET = object()  # training_sequence's default: the sample's own next observation


def training_sequence(tokenizer, sample, cfg: PawConfig, with_wm: bool = True, target=OWN_TARGET) -> TrainingSequence:
    """One rollout step as the trainer (and the WM evaluation) sees it: prompt, response, o_{t+1}.

    Step mode: ``prompt ; response ; delimiter + o_{t+1}`` (``wm_target_ids``), or ``delimiter +
    target`` when a ``paw.targets`` strategy gave another text (``target``: str, or None for no
    target). Trajectory mode
    (the sample has a ``context``): the step's reply and next-observation message inside its
    episode's one sequence, the target capped at ``paw.max_obs_tokens`` — no tokens of its own."""
    if sample.context is not None:
        wm = min(sample.wm_tokens, cfg.max_obs_tokens) if with_wm else 0
        return TrainingSequence([], sample.response_ids, sample.context[sample.wm_start : sample.wm_start + wm], sample.allowed,
                                context=sample.context, start=sample.start, wm_start=sample.wm_start)
    text = sample.next_observation_text if target is OWN_TARGET else target
    wm_ids = wm_target_ids(tokenizer, text, cfg) if with_wm else []
    return TrainingSequence(sample.prompt_ids, sample.response_ids, wm_ids, sample.allowed)


def drop_unweighted_targets(seqs: list[TrainingSequence], weights: torch.Tensor) -> list[TrainingSequence]:
    """Rows with WM weight 0 (not selected, or λ_g = 0) lose their WM tokens: same loss and
    metrics, shorter forward pass."""
    return [s if w > 0 else dataclasses.replace(s, wm_ids=[]) for s, w in zip(seqs, weights.tolist())]


ACTIVITY_EPSILON = 0.01  # ε of the CMAE activity diagnostic: below it a token's gradient (∝ p) is effectively noise


def record_activity(p: torch.Tensor, rho: float, metrics: Metrics) -> None:
    """The clipped MAE's activity over target-token probabilities ``p`` ``[T]`` (the selected
    transitions' targets), token-weighted into ``metrics``: the fraction with p > ρ
    (``paw/cmae_above_rho``: no loss, no gradient — already learned), with ε < p ≤ ρ
    (``paw/cmae_active``: where the loss acts), and with p ≤ ε (``paw/cmae_below_eps``: a
    gradient −p·∂log p of at most ε — effectively treated as noise), ε = ``ACTIVITY_EPSILON``.
    ∂ℓ/∂log p = −p·[p ≤ ρ] (docs/paw.md): on a from-scratch model nearly every token is below ε."""
    n = p.numel()
    if not n:
        return
    floor = min(ACTIVITY_EPSILON, rho)  # with ρ < ε the three stay a partition (active is then empty)
    metrics.add("paw/cmae_above_rho", float((p > rho).sum()) / n, n)
    metrics.add("paw/cmae_active", float(((p > floor) & (p <= rho)).sum()) / n, n)
    metrics.add("paw/cmae_below_eps", float((p <= floor).sum()) / n, n)


@dataclass
class PawPlan:
    selected: torch.Tensor  # bool [N]
    weights: torch.Tensor  # [N]: λ_g / (groups · selected in g) for selected rows, else 0
    group_lambdas: torch.Tensor  # [G]

    def record(self, eligible: torch.Tensor, metrics: Metrics) -> None:
        """The plan's one-off numbers into the step's metrics."""
        lam = self.group_lambdas
        metrics.set("paw/selected_fraction", float(self.selected.float().mean()) if len(self.selected) else 0.0)
        metrics.set("paw/eligible_fraction", float(eligible.float().mean()) if len(eligible) else 0.0)
        metrics.set("paw/lambda_mean", float(lam.mean()) if len(lam) else 0.0)
        metrics.set("paw/lambda_std", float(lam.std(unbiased=False)) if len(lam) else 0.0)


def plan(
    strategies: "RunStrategies",
    rows: StepRows,
    groups: GroupRows,
    group_index: torch.Tensor,
    eligible: torch.Tensor,
    step: int,
    max_return: float,
    generator: torch.Generator,
    metrics: Metrics | None = None,
) -> PawPlan:
    """Select transitions among the eligible ones and weight them per rollout group.

    ``rows``: every transition of the batch (``[N]``, with ``action_entropy``); ``groups``: its
    G rollout groups; ``group_index`` ``[N]``: each row's position in ``groups``; ``eligible``
    ``[N]`` bool: rows with a WM target. The selector sees the eligible rows only, the balancer
    all of them. Batch WM loss = mean over groups of λ_g · (mean loss of g's selected
    transitions), which is linear in the per-transition losses: that is what makes
    micro-batching exact.
    """
    n = len(rows)
    selected = torch.zeros(n, dtype=torch.bool)
    candidates = eligible.nonzero().flatten()
    if len(candidates):
        chosen = strategies.select(rows.subset(candidates.tolist()), groups, step, max_return, generator, metrics)
        selected[candidates[chosen]] = True
    lambdas = strategies.balance(rows, groups, step, max_return, generator, metrics)
    n_groups = len(groups)
    per_group = torch.bincount(group_index[selected], minlength=n_groups).float()
    weights = torch.zeros(n)
    if n_groups:
        chosen_rows = selected.nonzero().flatten()
        g = group_index[chosen_rows]
        weights[chosen_rows] = lambdas[g] / (n_groups * per_group[g])
    return PawPlan(selected=selected, weights=weights, group_lambdas=lambdas)
