"""Shared by the step benchmarks: one timed rollout, then timed ``learn`` calls on that batch."""

from __future__ import annotations

import statistics
import time

from pawkit.train.metrics import Metrics


def rollout_then_learn(trainer, repeats: int):
    """``(batch, rollout seconds, median learn seconds, the last learn's metrics)``."""
    t0 = time.perf_counter()
    batch = trainer.rollout()
    rollout = time.perf_counter() - t0
    learn = []
    for _ in range(repeats):
        metrics = Metrics()
        t0 = time.perf_counter()
        trainer.learn(batch, metrics)
        learn.append(time.perf_counter() - t0)
    return batch, rollout, statistics.median(learn), metrics.result()
