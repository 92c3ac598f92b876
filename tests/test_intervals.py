"""95 % intervals and the paired test behind eval reports and sweep tables (pawkit/train/intervals.py)."""

import math

import pytest

from pawkit.protocol import Episode
from pawkit.train.evaluate import episode_returns, paired_change, summarize
from pawkit.train.intervals import mean_interval, paired_difference, sign_flip_p, t_975, wilson_interval


def test_t_quantiles_match_the_table_and_the_large_df_limit():
    assert t_975(1) == 12.7062 and t_975(4) == 2.7764 and t_975(30) == 2.0423
    assert t_975(40) == pytest.approx(2.0211, abs=1e-4)
    assert t_975(120) == pytest.approx(1.9799, abs=1e-4)
    assert t_975(10**6) == pytest.approx(1.959964, abs=1e-5)
    with pytest.raises(ValueError):
        t_975(0)


def test_mean_interval_by_hand():
    # mean 2, s = 1, n = 4: half width = t(3) * 1 / 2 = 3.1824 / 2
    iv = mean_interval([1.0, 2.0, 2.0, 3.0])
    s = math.sqrt(2 / 3)
    assert iv.estimate == 2.0 and iv.n == 4
    assert iv.high - 2.0 == pytest.approx(3.1824 * s / 2, abs=1e-12)
    assert mean_interval([0.5]).low == 0.5  # one value: no spread to estimate
    with pytest.raises(ValueError):
        mean_interval([])


def test_wilson_interval_known_values():
    zero = wilson_interval(0, 50)
    assert (zero.estimate, zero.low) == (0.0, 0.0) and zero.high == pytest.approx(0.07135, abs=1e-5)
    ten = wilson_interval(10, 50)
    assert (ten.low, ten.high) == (pytest.approx(0.11243, abs=1e-5), pytest.approx(0.33037, abs=1e-5))
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_sign_flip_p_exact_and_sampled():
    assert sign_flip_p([1.0] * 5) == 2 / 32  # only all-plus and all-minus reach |mean| = 1
    assert sign_flip_p([0.0, 0.0]) == 1.0
    assert sign_flip_p([1.0, -1.0, 2.0]) == 0.75  # |sums| 4, 2, 2, 0 (and their negations): 6 of 8 reach 2
    assert sign_flip_p([0.3] * 20) == 1 / 20_001  # sampled (20 pairs): no draw of seed 0 reaches the observed 6
    d = paired_difference([0.0, 0.0, 0.0], [1.0, 0.0, 1.0])
    assert d.interval.estimate == pytest.approx(2 / 3) and d.p_value == 4 / 8  # the 0 pair flips nothing: ±1 ±1 reaches |2| in 2 of 4


def _episode(task, ret, reason="done"):
    return Episode(env="e", task_id=task, group_id="g", **{"return": ret}, success=ret == 1.0, end_reason=reason)


def test_summary_intervals_and_pairing_by_task_occurrence():
    before = [_episode("a", 0.0), _episode("b", 0.0), _episode("a", 0.0), _episode("c", 0.0, "env_error")]
    after = [_episode("a", 1.0), _episode("b", 0.5), _episode("a", 0.0), _episode("c", 1.0)]
    s = summarize("e", after)
    assert s["success_rate"] == 0.5 and s["success_ci95_low"] == pytest.approx(wilson_interval(2, 4).low)
    assert s["mean_return_ci95_high"] == pytest.approx(mean_interval([1.0, 0.5, 0.0, 1.0]).high)
    assert episode_returns(before) == [("a#0", 0.0), ("b#0", 0.0), ("a#1", 0.0)]
    change = paired_change(episode_returns(before), episode_returns(after))
    assert change["pairs"] == 3  # c hit an env error before: unpaired
    assert change["mean_return_change"] == pytest.approx(0.5)
    assert paired_change([], episode_returns(after)) is None
