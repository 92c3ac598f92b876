"""End-to-end: the tiny model learns the built-in gridnav game by RL, with and without PaW.

The bar (issue 4): greedy success starts at ≤ 20% and reaches ≥ 90% within 200 steps, with
early stopping, a fixed seed, on CPU.
"""

import pytest

from pawkit.config import load_config
from pawkit.evaluate import evaluate
from pawkit.trainer import train


def learn(tmp_path, *overrides):
    cfg = load_config("gridnav", overrides=[f"trainer.output_dir={tmp_path}", "trainer.steps=200", *overrides])
    start = evaluate(cfg, episodes=cfg.trainer.eval_episodes, split=cfg.env.eval_split)["success_rate"]
    history = train(cfg, show_progress=False)
    evals = [m["eval/success_rate"] for m in history if "eval/success_rate" in m]
    return start, evals, history


@pytest.mark.learning
def test_tiny_model_learns_gridnav_with_grpo(tmp_path):
    start, evals, history = learn(tmp_path)
    assert start <= 0.2
    assert evals[-1] >= 0.9, f"greedy success per eval: {evals}"
    assert len(history) <= 200


# Slow and not yet at the bar (issue 5): with the default λ0 = 0.05 the tiny model's PaW runs
# reach eval success 0.25 and 0.63 after 100 steps on seeds 0 and 1 (GRPO: 1.0 at step 70, 0.53);
# one 1-thread run with λ0 = 0.01 reached 0.875 at step 50. See docs/results.md.
@pytest.mark.slow
@pytest.mark.learning
def test_tiny_model_still_learns_with_paw(tmp_path):
    start, evals, history = learn(tmp_path, "paw.enabled=true")
    assert start <= 0.2
    assert evals[-1] >= 0.9, f"greedy success per eval: {evals}"
    paw_steps = [m for m in history if "paw/selected_fraction" in m]
    assert paw_steps and all(0.75 <= m["paw/selected_fraction"] <= 0.76 for m in paw_steps)  # ⌈κN⌉/N, N ≈ 300
    assert sum(m["paw/wm_tokens"] for m in paw_steps) > 0  # 0 on steps where every group succeeded (λ_g = 0)
