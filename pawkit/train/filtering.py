"""Group filtering and dynamic sampling (``algorithm.filter_groups``, ``resample``; DAPO).

A rollout group whose scores are all equal has zero variance, so GRPO's and RLOO's advantages
are exactly 0 for all its rows: it adds no policy gradient, only dilutes the token mean.
``filter_groups=zero_variance`` takes such groups out of the RL loss; with ``resample=true``
the step keeps playing rounds of ``rollout.tasks_per_step`` fresh tasks (drawn from the run's
task RNG, which is in ``TrainState``, so a resumed run draws the same ones) until it has
``tasks_per_step`` informative groups or ``max_resample_rounds`` extra rounds were played.

A group's scores are what the advantage estimators normalise: per row, the episode return
minus ``rollout.invalid_penalty`` on an invalid row (``StepRows.scores``, as the estimators). So a
group whose episodes all returned the same but made an invalid move is informative (the
penalty's signal stays). A group of one row has a non-zero GRPO advantage (its raw score) and
is never filtered. GiGPO's step term can be non-zero in a filtered group; it is dropped too.

The batch that ``Trainer.learn`` trains on has at most ``tasks_per_step`` groups: the first
informative ones in draw order and, with ``paw.enabled`` and ``filter_wm=keep`` (default),
filtered groups in draw order in the places left, as world-model data only: their transitions
are valid (observation, action, next observation) targets whatever their reward, so PaW's WM
loss keeps them (its selector and balancer see them like any group; with
``reward_adaptive`` an all-success group gets λ_g = 0 anyway). ``filter_wm=drop`` trains on
the informative groups only. The bound keeps the update's cost and memory those of an
unfiltered step. Episode metrics (``rollout/success_rate``, ``rollout/episodes``, …) count
every episode played, in every round.

Under data parallelism each process filters and resamples its own groups; ``learn`` is still
called once per step on every process (an empty batch joins the others' collectives).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable

from pawkit.config import Config
from pawkit.rollout.samples import RolloutBatch
from pawkit.train.metrics import Metrics
from pawkit.train.rows import step_rows


def _any(scores: list[float]) -> bool:
    return True


def _varies(scores: list[float]) -> bool:
    return len(scores) < 2 or max(scores) != min(scores)


# name (algorithm.filter_groups) → predicate "this group is informative" on its row scores.
GROUP_FILTERS: dict[str, Callable[[list[float]], bool]] = {"none": _any, "zero_variance": _varies}


def group_scores(batch: RolloutBatch, penalty: float) -> dict[str, list[float]]:
    """Per group (order of first appearance in ``batch.samples``), each row's score:
    episode return − ``penalty`` if the row's action was invalid."""
    rows = step_rows(batch, penalty)
    out: dict[str, list[float]] = {}
    for group, score in zip(rows.group_ids, rows.scores()):
        out.setdefault(group, []).append(score)
    return out


def merge(batches: list[RolloutBatch]) -> RolloutBatch:
    """One batch of every episode and sample of ``batches``, in order: list fields concatenated,
    counters summed (field by field, so a counter added to ``RolloutBatch`` is merged too)."""
    if len(batches) == 1:
        return batches[0]
    return RolloutBatch(**{
        f.name: [x for b in batches for x in getattr(b, f.name)] if isinstance(getattr(batches[0], f.name), list)
        else sum(getattr(b, f.name) for b in batches)
        for f in dataclasses.fields(RolloutBatch)
    })


def subset(batch: RolloutBatch, groups: list[str]) -> RolloutBatch:
    """The episodes and samples of ``groups`` (in ``batch``'s order); counters are the played batch's."""
    keep = set(groups)
    return RolloutBatch(episodes=[e for e in batch.episodes if e.group_id in keep],
                        samples=[s for s in batch.samples if s.group_id in keep])


@dataclass
class StepBatch:
    """One step's rollouts: ``played`` (every round), ``kept`` (what ``learn`` trains on) and
    ``rl_groups`` (the groups of ``kept`` in the RL loss; the others are WM data only)."""

    played: RolloutBatch
    kept: RolloutBatch
    rl_groups: set[str]
    judged: int = 0  # groups with samples, every round
    filtered: list[str] = field(default_factory=list)  # their ids, draw order
    rounds: int = 0  # extra rounds played (resample)
    extra_episodes: int = 0

    def record(self, metrics: Metrics) -> None:
        """``rollout/filtered_group_fraction`` (over the groups judged, every round),
        ``rollout/resample_rounds`` and ``rollout/extra_episodes`` (beyond the first round)."""
        metrics.add("rollout/filtered_group_fraction", len(self.filtered) / max(self.judged, 1), self.judged)
        metrics.set("rollout/resample_rounds", self.rounds)
        metrics.set("rollout/extra_episodes", self.extra_episodes)


def sample_step(play: Callable[[], RolloutBatch], cfg: Config) -> StepBatch:
    """Play one round with ``play`` (``rollout.tasks_per_step`` fresh tasks), more while
    ``algorithm.resample`` asks for them, and split the result as the module docstring says."""
    alg, want = cfg.algorithm, cfg.rollout.tasks_per_step
    informative = GROUP_FILTERS[alg.filter_groups]
    rounds: list[RolloutBatch] = []
    good: list[str] = []
    bad: list[str] = []
    while not rounds or (alg.resample and len(good) < want and len(rounds) <= alg.max_resample_rounds):
        rounds.append(play())
        for gid, scores in group_scores(rounds[-1], cfg.rollout.invalid_penalty).items():
            (good if informative(scores) else bad).append(gid)
    played = merge(rounds)
    rl = good[:want]
    wm_only = bad[: want - len(rl)] if cfg.paw.enabled and alg.filter_wm == "keep" else []
    kept = played if len(rounds) == 1 and not bad else subset(played, rl + wm_only)
    return StepBatch(played, kept, set(rl), judged=len(good) + len(bad), filtered=bad, rounds=len(rounds) - 1,
                     extra_episodes=sum(len(r.episodes) for r in rounds[1:]))
