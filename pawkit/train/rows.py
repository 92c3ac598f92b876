"""A rollout batch as the strategies see it: ``StepRows`` (one row per sample) and ``GroupRows``
(one row per rollout group), the contents of every ``StrategyContext`` (pawkit/strategies.py)."""

from __future__ import annotations

import torch

from pawkit.rollout.samples import RolloutBatch
from pawkit.strategies import GroupRows, StepRows
from pawkit.train.batching import TrainingSequence


def step_rows(batch: RolloutBatch, penalty: float, seqs: list[TrainingSequence] | None = None,
              entropy: torch.Tensor | None = None) -> StepRows:
    """One row per sample of ``batch``, in order; ``target_tokens`` from ``seqs`` and
    ``action_entropy`` from ``entropy`` ``[N]`` (nats) when given, else empty."""
    s = batch.samples
    return StepRows(
        group_ids=[x.group_id for x in s],
        traj_ids=[x.traj_id for x in s],
        step_index=[x.step_index for x in s],
        reward=[x.reward for x in s],
        episode_return=[x.episode_return for x in s],
        anchor=[x.anchor for x in s],
        invalid=[x.invalid for x in s],
        penalty=penalty,
        action_text=[x.action_text for x in s],
        observation_text=[x.observation_text for x in s],
        next_observation_text=[x.next_observation_text for x in s],
        prompt_tokens=[len(x.prompt_ids) for x in s],
        action_tokens=[len(x.response_ids) for x in s],
        target_tokens=[len(q.wm_ids) for q in seqs] if seqs is not None else [],
        action_entropy=[float(e) for e in entropy] if entropy is not None else [],
    )


def group_rows(batch: RolloutBatch) -> tuple[GroupRows, torch.Tensor]:
    """The batch's rollout groups (order of first appearance, over episodes without an env
    error) and each sample's group position ``[N]`` (long)."""
    position = {g: i for i, g in enumerate(dict.fromkeys(s.group_id for s in batch.samples))}
    index = torch.tensor([position[s.group_id] for s in batch.samples], dtype=torch.long)
    kept: dict[str, list] = {g: [] for g in position}
    for e in batch.episodes:
        if e.end_reason != "env_error" and e.group_id in kept:
            kept[e.group_id].append(e)
    groups = GroupRows(
        group_ids=list(position),
        mean_return=[sum(e.return_ for e in k) / len(k) for k in kept.values()],
        episodes=[len(k) for k in kept.values()],
        success_rate=[sum(e.success for e in k) / len(k) for k in kept.values()],
    )
    return groups, index
