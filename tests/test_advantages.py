"""GRPO, GiGPO and RLOO advantages on hand-made step rows, checked against closed-form values."""

import math

import pytest
import torch

from pawkit import plugins
from pawkit.config import AlgorithmConfig
from pawkit.strategies import StepRows, StrategyContext
from pawkit_plugins.advantages import step_returns

EPS = 1e-6


def _estimate(name, rows, **cfg):
    adv = plugins.get("advantage_estimator", name)(StrategyContext(cfg=AlgorithmConfig(**cfg), rows=rows))
    assert adv.dtype == torch.float32 and adv.shape == (len(rows),)
    return adv.tolist()


def _episode_rows(invalid=(False, False, False, False, False)):
    """Group a: trajectory a1 (3 steps, return 1) and a2 (1 step, return 0); group b: one lone row."""
    return StepRows(
        group_ids=["a", "a", "a", "a", "b"],
        traj_ids=["a1", "a1", "a1", "a2", "b1"],
        step_index=[0, 1, 2, 0, 0],
        reward=[0.0, 0.0, 1.0, 0.0, 2.0],
        episode_return=[1.0, 1.0, 1.0, 0.0, 2.0],
        anchor=["x", "y", "z", "x", "x"],
        invalid=list(invalid),
    )


def test_grpo_cross_step_statistics_and_singleton_group():
    # Group a over its 4 step rows: scores 1,1,1,0 → mean 0.75, unbiased std 0.5; lone row b: mean 0, std 1.
    adv = _estimate("grpo", _episode_rows())
    assert adv == pytest.approx([0.25 / (0.5 + EPS)] * 3 + [-0.75 / (0.5 + EPS), 2.0 / (1.0 + EPS)], abs=1e-6)


def test_grpo_without_std_division():
    adv = _estimate("grpo", _episode_rows(), norm_by_std=False)
    assert adv == pytest.approx([0.25, 0.25, 0.25, -0.75, 2.0], abs=1e-6)


def test_invalid_penalty_lowers_only_that_rows_score():
    rows = _episode_rows(invalid=(False, True, False, False, True))
    # Scores 1, 0.9, 1, 0 → mean 0.725; the lone row b scores 2 − 0.1.
    adv = _estimate("grpo", rows, norm_by_std=False)
    assert adv == pytest.approx([0.275, 0.175, 0.275, -0.725, 1.9], abs=1e-6)
    rows.penalty = 0.5
    assert _estimate("grpo", rows, norm_by_std=False) == pytest.approx([0.375, -0.125, 0.375, -0.625, 1.5], abs=1e-6)


def test_rloo_leave_one_out_over_step_rows():
    # n = 4: n/(n−1)·(x − 0.75) = x − mean of the other three rows; the lone row keeps its score.
    assert _estimate("rloo", _episode_rows()) == pytest.approx([1 / 3, 1 / 3, 1 / 3, -1.0, 2.0], abs=1e-6)
    penalised = _episode_rows(invalid=(False, False, False, True, False))
    # Scores 1,1,1,−0.1: row 3 → −0.1 − 1 = −1.1; row 0 → 1 − (1 + 1 − 0.1)/3 = 1.1/3.
    assert _estimate("rloo", penalised) == pytest.approx([1.1 / 3] * 3 + [-1.1, 2.0], abs=1e-6)


def _gigpo_rows(invalid=None):
    """Task g: A reaches the goal at its 3rd step (reward 1); B fails and revisits s0 at step 2.

    Task h: a lone row whose anchor "s1" equals one of g's, which must NOT join g's step group.
    Step groups within g: s0 = {A0, B0, B2}, s1 = {A1, B1}, s2 = {A2} (singleton).
    """
    return StepRows(
        group_ids=["g"] * 6 + ["h"],
        traj_ids=["A", "A", "A", "B", "B", "B", "C"],
        step_index=[0, 1, 2, 0, 1, 2, 0],
        reward=[0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        episode_return=[1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        anchor=["s0", "s1", "s2", "s0", "s1", "s0", "s1"],
        invalid=invalid or [False] * 7,
    )


def test_step_returns_are_discounted_within_each_trajectory():
    assert step_returns(_gigpo_rows(), 0.5).tolist() == pytest.approx([0.25, 0.5, 1.0, 0.0, 0.0, 0.0, 1.0])
    assert step_returns(_gigpo_rows(), 1.0).tolist() == pytest.approx([1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0])


def test_gigpo_mean_norm():
    # Episode: g rows 1,1,1,0,0,0 → ±0.5; h is a lone row → its score 1.
    # Step (γ=0.5): s0 {0.25, 0, 0} mean 1/12; s1 {0.5, 0} mean 0.25; s2 and h's row are singletons → 0.
    adv = _estimate("gigpo", _gigpo_rows(), gamma=0.5, gigpo_mode="mean_norm")
    assert adv == pytest.approx([0.5 + 1 / 6, 0.75, 0.5, -0.5 - 1 / 12, -0.75, -0.5 - 1 / 12, 1.0], abs=1e-6)


def test_gigpo_mean_std_norm():
    adv = _estimate("gigpo", _gigpo_rows(), gamma=0.5, gigpo_mode="mean_std_norm")
    ep = 0.5 / (math.sqrt(0.3) + EPS)  # unbiased std of 1,1,1,0,0,0 is sqrt(0.3)
    s0_std = math.sqrt(1 / 48)  # unbiased std of 0.25, 0, 0
    s1 = 0.25 / (math.sqrt(0.125) + EPS)  # unbiased std of 0.5, 0
    up, down = (1 / 6) / (s0_std + EPS), (-1 / 12) / (s0_std + EPS)
    expected = [ep + up, ep + s1, ep, -ep + down, -ep - s1, -ep + down, 1.0 / (1.0 + EPS)]
    assert adv == pytest.approx(expected, abs=1e-5)


def test_gigpo_step_weight_scales_only_the_step_term():
    adv = _estimate("gigpo", _gigpo_rows(), gamma=0.5, gigpo_mode="mean_norm", step_advantage_weight=2.0)
    assert adv == pytest.approx([0.5 + 1 / 3, 1.0, 0.5, -0.5 - 1 / 6, -1.0, -0.5 - 1 / 6, 1.0], abs=1e-6)
    no_step = _estimate("gigpo", _gigpo_rows(), gamma=0.5, gigpo_mode="mean_norm", step_advantage_weight=0.0)
    assert no_step == pytest.approx(_estimate("grpo", _gigpo_rows(), norm_by_std=False), abs=1e-6)


def test_gigpo_invalid_penalty_hits_score_and_own_step_return_only():
    invalid = [False, False, False, False, True, False, False]  # B's second action was invalid
    adv = _estimate("gigpo", _gigpo_rows(invalid), gamma=0.5, gigpo_mode="mean_norm")
    # Episode: g scores 1,1,1,0,−0.1,0 → mean 2.9/6. Step: B1's return 0 − 0.1 → s1 {0.5, −0.1} mean 0.2;
    # B0 keeps return 0 (the penalty is not discounted back), so s0 is unchanged.
    m = 2.9 / 6
    expected = [1 - m + 1 / 6, 1 - m + 0.3, 1 - m, -m - 1 / 12, -0.1 - m - 0.3, -m - 1 / 12, 1.0]
    assert adv == pytest.approx(expected, abs=1e-6)


def test_gigpo_identical_anchor_states_across_steps_group_together():
    """Without the revisit (B2's anchor different), s0 shrinks to {A0, B0} and B2 becomes a singleton."""
    rows = _gigpo_rows()
    rows.anchor[5] = "s9"
    adv = _estimate("gigpo", rows, gamma=0.5, gigpo_mode="mean_norm")
    assert adv == pytest.approx([0.5 + 0.125, 0.75, 0.5, -0.5 - 0.125, -0.75, -0.5, 1.0], abs=1e-6)


def test_mismatched_rows_are_rejected():
    rows = _gigpo_rows()
    rows.anchor.pop()
    with pytest.raises(ValueError, match="anchor"):
        _estimate("gigpo", rows)
