"""The CMAE activity diagnostic: which share of the selected WM target tokens the clipped MAE
can act on (ε < p ≤ ρ), has already fitted (p > ρ) or treats as noise (p ≤ ε)."""

import pytest
import torch

from pawkit.config import load_config
from pawkit.train.metrics import Metrics
from pawkit.train.paw import ACTIVITY_EPSILON, record_activity
from pawkit.train.trainer import Trainer


def test_fractions_on_crafted_probabilities():
    assert ACTIVITY_EPSILON == 0.01
    metrics = Metrics()
    # ρ = 0.2: 0.5 above; 0.1 and 0.2 (≤ ρ counts as active) in between; 0.005 and 0.01 (≤ ε) below
    record_activity(torch.tensor([0.5, 0.1, 0.005, 0.2, 0.01]), 0.2, metrics)
    # a second micro-batch weighs by its token count: 1 of 3 more above
    record_activity(torch.tensor([0.9, 0.05, 0.001]), 0.2, metrics)
    result = metrics.result()
    assert result["paw/cmae_above_rho"] == pytest.approx(2 / 8)
    assert result["paw/cmae_active"] == pytest.approx(3 / 8)
    assert result["paw/cmae_below_eps"] == pytest.approx(3 / 8)
    record_activity(torch.tensor([]), 0.2, metrics)  # no targets: nothing added
    assert metrics.result() == result
    # ρ below ε: the bound of "below ε" drops to ρ, so the three still partition the tokens
    low = Metrics()
    record_activity(torch.tensor([0.5, 0.007, 0.003]), 0.004, low)
    assert [low.result()[k] for k in ("paw/cmae_above_rho", "paw/cmae_active", "paw/cmae_below_eps")] == [2 / 3, 0.0, 1 / 3]


def test_a_paw_step_reports_the_activity_of_its_targets(tmp_path):
    cfg = load_config("gridnav", overrides=[f"trainer.output_dir={tmp_path}", "rollout.tasks_per_step=2", "rollout.group_size=4",
                                            "trainer.eval_every=0", "paw.enabled=true", "paw.balancer=fixed"])
    trainer = Trainer(cfg)
    try:
        metrics = trainer.train_step()
    finally:
        trainer.close()
    parts = [metrics[k] for k in ("paw/cmae_above_rho", "paw/cmae_active", "paw/cmae_below_eps")]
    assert sum(parts) == pytest.approx(1.0)
    # the from-scratch tiny model gives each of its 259 byte ids p ≈ 1/259 < ε: PaW is inert here
    assert metrics["paw/cmae_below_eps"] > 0.9 and metrics["paw/wm_target_prob"] < ACTIVITY_EPSILON
