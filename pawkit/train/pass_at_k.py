"""Sampled evaluation: pass@k and best-of-k return from n sampled episodes per task.

Each task of the evaluation is played n times at the training temperature; from its n returns:

- ``pass_at_k(n, c, k)``: the probability that at least one of k episodes drawn without
  replacement from the n succeeds, 1 − C(n−c, k)/C(n, k), with c the successes (the unbiased
  pass@k estimator of Chen et al. 2021, "Evaluating Large Language Models Trained on Code", eq. 1).
- ``best_of_k(returns, k)``: the expected largest return of k of the n episodes drawn without
  replacement, Σ_i r_(i)·C(i−1, k−1)/C(n, k) over the returns sorted ascending (r_(i) is the
  largest of a k-subset in C(i−1, k−1) of the C(n, k) subsets). The same estimator for a graded
  score; on 0/1 returns it equals pass@k, and best-of-1 is the mean sampled return.

``sampled_summary`` averages both over tasks, with Student's t 95 % intervals over tasks
(pawkit/train/intervals.py): tasks, not episodes, are the independent units.
"""

from __future__ import annotations

from collections import defaultdict
from math import comb
from typing import Sequence

from pawkit.protocol import Episode
from pawkit.train.intervals import mean_interval


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability in [0, 1] that k of n episodes, c of them successes, hold at least one success.

    Raises ValueError unless 0 ≤ c ≤ n and 1 ≤ k ≤ n."""
    if not (0 <= c <= n and 1 <= k <= n):
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    return 1.0 - comb(n - c, k) / comb(n, k)


def best_of_k(returns: Sequence[float], k: int) -> float:
    """Expected maximum return (the returns' unit) of k of these n episodes drawn without
    replacement. Raises ValueError unless 1 ≤ k ≤ n."""
    n = len(returns)
    if not 1 <= k <= n:
        raise ValueError(f"best-of-k needs 1 <= k <= n, got n={n}, k={k}")
    ordered = sorted(returns)
    return sum(r * comb(i, k - 1) for i, r in enumerate(ordered)) / comb(n, k)


def sampled_summary(episodes: Sequence[Episode], ks: Sequence[int]) -> dict[str, float]:
    """``pass@k`` and ``best_of_k_return@k`` (means over tasks, each with ``_ci95_low/high``) for
    every k in ``ks``, plus ``sampled_tasks`` (tasks in the means), ``samples_per_task`` (the
    fewest episodes any of them kept) and ``sampled_env_errors`` (episodes dropped).

    Episodes that hit an env error are dropped, and so is a task left with fewer than max(k)
    episodes: every k is then computed over the same tasks. pass@k's interval is clipped to
    [0, 1] (the t interval of values near 0 or 1 can cross the bound). Raises ValueError when no
    task kept max(k) episodes."""
    need = max(ks)
    by_task: dict[str, list[Episode]] = defaultdict(list)
    errors = 0
    for e in episodes:
        if e.end_reason == "env_error":
            errors += 1
        else:
            by_task[e.task_id].append(e)
    kept = [v for v in by_task.values() if len(v) >= need]
    if not kept:
        raise ValueError(f"no task kept {need} sampled episodes ({errors} of {len(episodes)} hit env errors)")
    out: dict[str, float] = {"sampled_tasks": float(len(kept)), "samples_per_task": float(min(len(v) for v in kept)),
                             "sampled_env_errors": float(errors)}
    for k in sorted(set(ks)):
        for name, values, bounded in (
            (f"pass@{k}", [pass_at_k(len(v), sum(bool(e.success) for e in v), k) for v in kept], True),
            (f"best_of_k_return@{k}", [best_of_k([float(e.return_) for e in v], k) for v in kept], False),
        ):
            iv = mean_interval(values)
            low, high = (max(0.0, iv.low), min(1.0, iv.high)) if bounded else (iv.low, iv.high)
            out.update({name: iv.estimate, f"{name}_ci95_low": low, f"{name}_ci95_high": high})
    return out
