"""95 % intervals and a paired test for evaluation numbers (no SciPy: the quantiles are tabled).

- ``mean_interval``: mean ± t_{0.975, n−1} · s/√n (Student's t interval of a mean; returns per
  episode, or one number per seed in a sweep).
- ``wilson_interval``: the Wilson score interval of a success rate (Wilson 1927; it stays inside
  [0, 1] and is not degenerate at 0/n or n/n, unlike the normal-approximation interval).
- ``paired_difference``: the mean of after − before over matched pairs (the same tasks before and
  after training, or the same seeds in two arms) with its t interval, and the two-sided p-value of
  the exact sign-flip permutation test of "no difference" (Fisher 1935: every ± assignment of the
  differences is equally likely under the null; enumerated up to 16 pairs, else 20,000 seeded draws).
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from typing import Sequence

Z_975 = 1.959963984540054  # the standard normal's 0.975 quantile
# t_{0.975, df} for df = 1 … 30 (any statistics table); above 30 the Cornish-Fisher expansion below.
_T_975 = (12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281, 2.2010, 2.1788,
          2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860, 2.0796, 2.0739, 2.0687, 2.0639,
          2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423)


def t_975(df: int) -> float:
    """Student's t 0.975 quantile with ``df`` ≥ 1 degrees of freedom (error < 1e-4 for every df)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, not {df}")
    if df <= len(_T_975):
        return _T_975[df - 1]
    z = Z_975
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


@dataclass(frozen=True)
class Interval:
    """An estimate and its 95 % interval; ``n`` values went in (low = high = estimate when n < 2)."""

    estimate: float
    low: float
    high: float
    n: int

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def __str__(self) -> str:
        return f"{self.estimate:.3f} [{self.low:.3f}, {self.high:.3f}]"


def mean_interval(values: Sequence[float]) -> Interval:
    """Mean and Student's t 95 % interval of ``values`` (any unit; raises on an empty list)."""
    n = len(values)
    if n == 0:
        raise ValueError("no values to average")
    mean = math.fsum(values) / n
    if n < 2:
        return Interval(mean, mean, mean, n)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_975(n - 1) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)


def wilson_interval(successes: int, n: int) -> Interval:
    """Success rate ``successes / n`` and its Wilson score 95 % interval (0–1)."""
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n > 0, got {successes}/{n}")
    p, z2 = successes / n, Z_975**2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z_975 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact ends, not rounding residue
    high = 1.0 if successes == n else min(1.0, centre + half)
    return Interval(p, low, high, n)


@dataclass(frozen=True)
class PairedDifference:
    """after − before over ``interval.n`` pairs: the mean difference with its t interval and the
    two-sided sign-flip permutation p-value (1.0 when every difference is 0)."""

    interval: Interval
    p_value: float


def paired_difference(before: Sequence[float], after: Sequence[float], seed: int = 0) -> PairedDifference:
    """Matched pairs (same length, same order); raises ValueError on a length mismatch or no pairs."""
    if len(before) != len(after):
        raise ValueError(f"paired values need equal lengths, got {len(before)} and {len(after)}")
    diffs = [a - b for b, a in zip(before, after)]
    return PairedDifference(mean_interval(diffs), sign_flip_p(diffs, seed))


def sign_flip_p(diffs: Sequence[float], seed: int = 0, draws: int = 20_000) -> float:
    """Two-sided p of the paired permutation test: the share of sign assignments whose |mean|
    reaches the observed one (exact for ≤ 16 pairs; else ``draws`` seeded random assignments,
    counting the observed one, so p ≥ 1/(draws + 1))."""
    n = len(diffs)
    if n == 0:
        raise ValueError("no pairs to test")
    observed = abs(math.fsum(diffs)) - 1e-12
    if n <= 16:
        hits = sum(abs(math.fsum(s * d for s, d in zip(signs, diffs))) >= observed
                   for signs in itertools.product((1, -1), repeat=n))
        return hits / 2**n
    rng = random.Random(seed)
    hits = 1 + sum(abs(math.fsum(d if rng.random() < 0.5 else -d for d in diffs)) >= observed for _ in range(draws))
    return hits / (draws + 1)
