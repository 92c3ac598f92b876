"""One accumulator for a training step's metrics (TRL's ``_metrics`` idea, token-weighted).

Every key holds a (sum, weight) pair: ``add(key, value, weight)`` adds ``value · weight`` and
``weight``; ``result()`` reads ``sum / weight``. A loss term computed per micro-batch is added
with its micro-batch's token count as the weight, so the result is the token mean over the
whole batch; every PPO epoch adds again with the same weights, so with ``algorithm.ppo_epochs``
> 1 the result is the mean over epochs without any key needing its own division. A value
known once (a count, a rate over the batch) is ``set``.

Key names are namespaced (docs/training.md, "Metrics"): ``rollout/`` (the sampled episodes and
the batch built from them), ``loss/`` (the update: loss terms, gradient norm, skipped flag,
learning rate), ``paw/`` (world-model co-training), ``perf/`` (timings, throughput, memory),
``eval/`` (held-out evaluation), and ``step``.

No torch here: ``pawkit.experiments`` may import it without loading a model stack.
"""

from __future__ import annotations

from typing import Mapping


class Metrics:
    def __init__(self) -> None:
        self._sum: dict[str, float] = {}
        self._weight: dict[str, float] = {}

    def add(self, key: str, value: float, weight: float = 1.0) -> None:
        """Accumulate ``value`` with ``weight``. A zero weight only makes the key exist (it reads
        0.0 while nothing with a weight was added), and its value is not looked at, so a
        mean over zero tokens may be passed as anything."""
        weight = float(weight)
        self._sum[key] = self._sum.get(key, 0.0) + (float(value) * weight if weight else 0.0)
        self._weight[key] = self._weight.get(key, 0.0) + weight

    def set(self, key: str, value: float) -> None:
        """A one-off value: replaces whatever ``key`` held."""
        self._sum[key], self._weight[key] = float(value), 1.0

    def update(self, values: Mapping[str, float]) -> None:
        """``set`` every item (e.g. the rollout's or the PaW plan's one-off values)."""
        for key, value in values.items():
            self.set(key, value)

    def __contains__(self, key: str) -> bool:
        return key in self._sum

    def totals(self) -> dict[str, tuple[float, float]]:
        """(sum, weight) per key: what combining over processes needs (Σ sums / Σ weights)."""
        return {k: (s, self._weight[k]) for k, s in self._sum.items()}

    def result(self) -> dict[str, float]:
        """``sum / weight`` per key, in the order the keys first appeared."""
        return {k: (s / self._weight[k] if self._weight[k] else 0.0) for k, s in self._sum.items()}


# Episode means over the step's episodes without an env error, the invalid rate over their steps:
# weighted so that combining processes gives the rate over all of them.
EPISODE_MEANS = ("rollout/success_rate", "rollout/mean_return", "rollout/mean_steps")


def add_rollout_metrics(metrics: Metrics, batch) -> None:
    """A ``RolloutBatch``'s numbers (``batch.metrics()``) into ``metrics``, episode means weighted."""
    kept = [e for e in batch.episodes if e.end_reason != "env_error"]
    weights = dict.fromkeys(EPISODE_MEANS, len(kept))
    weights["rollout/invalid_action_rate"] = sum(len(e.transitions) for e in kept)
    for key, value in batch.metrics().items():
        if key in weights:
            metrics.add(key, value, weights[key])
        else:
            metrics.set(key, value)


def reset_peak_memory(devices: list[int]) -> None:
    """Make ``perf/peak_*`` this step's peaks: the GPUs' allocator peaks, and on Linux the
    process's peak RSS (``clear_refs`` 5; elsewhere ``ru_maxrss`` stays the run's peak so far)."""
    import contextlib

    if devices:
        import torch

        for device in devices:
            torch.cuda.reset_peak_memory_stats(device)
    with contextlib.suppress(OSError):
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
