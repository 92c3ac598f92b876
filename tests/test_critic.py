"""PPO with a learned critic (``algorithm.name=ppo``): GAE, the clipped value loss, where the value
head reads, its checkpoint, and learning gridnav."""

from __future__ import annotations

import pytest
import torch

from pawkit.config import load_config
from pawkit.strategies import StepRows, StrategyContext, gae
from pawkit.train.batching import micro_batches
from pawkit.train.checkpoint import load_state
from pawkit.train.critic import explained_variance, value_loss
from pawkit.train.evaluate import evaluate
from pawkit.train.trainer import Trainer, train
from pawkit_plugins.advantages import ppo


def rows(group, traj, step, reward, values, invalid=None, penalty=0.1):
    n = len(step)
    return StepRows(group_ids=group, traj_ids=traj, step_index=step, reward=reward, episode_return=[0.0] * n,
                    anchor=[""] * n, invalid=invalid or [False] * n, penalty=penalty, values=values)


def test_gae_on_a_hand_computed_three_step_episode():
    # γ = 0.9, λ = 0.8 (γλ = 0.72); step 1's action was invalid (penalty 0.1): r = [0, −0.1, 1]
    r = rows(["g"] * 3, ["t"] * 3, [0, 1, 2], [0.0, 0.0, 1.0], [0.5, 0.6, 0.7], invalid=[False, True, False])
    adv, ret = gae(r, 0.9, 0.8)
    # δ2 = 1 + 0.9·0 − 0.7 = 0.3 (the last step bootstraps with 0)
    # δ1 = −0.1 + 0.9·0.7 − 0.6 = −0.07;  δ0 = 0 + 0.9·0.6 − 0.5 = 0.04
    # A2 = 0.3;  A1 = −0.07 + 0.72·0.3 = 0.146;  A0 = 0.04 + 0.72·0.146 = 0.14512;  R = A + V
    assert adv == pytest.approx([0.14512, 0.146, 0.3], abs=1e-12)
    assert ret == pytest.approx([0.64512, 0.746, 1.0], abs=1e-12)


def test_gae_keeps_trajectories_apart_and_a_truncated_one_bootstraps_with_zero():
    # rows interleaved and out of step order: trajectory a (3 steps, as above without the penalty)
    # and trajectory b, cut by the turn limit after 2 steps with no reward
    r = rows(["g", "g", "g", "g", "g"], ["a", "b", "a", "b", "a"], [2, 1, 0, 0, 1],
             [1.0, 0.0, 0.0, 0.0, 0.0], [0.7, 0.4, 0.5, 0.2, 0.6])
    adv, ret = gae(r, 0.9, 0.8)
    # a: δ = [0.04, 0.03, 0.3] → A1 = 0.03 + 0.216 = 0.246, A0 = 0.04 + 0.72·0.246 = 0.21712
    # b: δ1 = 0 + 0 − 0.4 = −0.4, δ0 = 0 + 0.9·0.4 − 0.2 = 0.16 → A0 = 0.16 − 0.288 = −0.128
    assert adv == pytest.approx([0.3, -0.4, 0.21712, -0.128, 0.246], abs=1e-12)
    assert ret == pytest.approx([1.0, 0.0, 0.71712, 0.072, 0.846], abs=1e-12)
    with pytest.raises(ValueError, match="one value per row"):
        gae(rows(["g"], ["a"], [0], [1.0], []), 0.9, 0.8)


def test_the_ppo_estimator_whitens_gae_unless_told_not_to():
    cfg = load_config("gridnav", overrides=["algorithm.name=ppo", "algorithm.gamma=0.9", "algorithm.gae_lambda=0.8"]).algorithm
    r = rows(["g"] * 3, ["t"] * 3, [0, 1, 2], [0.0, 0.0, 1.0], [0.5, 0.6, 0.7], invalid=[False, True, False])
    raw = torch.tensor([0.14512, 0.146, 0.3], dtype=torch.float64)
    whitened = ppo(StrategyContext(cfg=cfg, rows=r, options=ppo.Options()))
    assert torch.allclose(whitened.double(), (raw - raw.mean()) / (raw.std() + 1e-6), atol=1e-6)
    plain = ppo(StrategyContext(cfg=cfg, rows=r, options=ppo.Options(whiten=False)))
    assert plain.tolist() == pytest.approx(raw.tolist(), abs=1e-7)
    assert ppo.needs_values is True


def test_the_clipped_value_loss_on_a_crafted_case():
    v = torch.tensor([1.0, 0.0, 0.5], requires_grad=True)
    v_old, returns = torch.tensor([0.5, 0.5, 0.5]), torch.tensor([2.0, 1.0, 0.0])
    loss, clipped = value_loss(v, v_old, returns, 0.2)
    # row 0: (1−2)² = 1 vs (0.5+0.2 − 2)² = 1.69 → ½·1.69, the clipped branch (no gradient)
    # row 1: (0−1)² = 1 vs (0.5−0.2 − 1)² = 0.49 → ½·1;  row 2: V = V_old, both 0.25 → 0.125
    assert loss.tolist() == pytest.approx([0.845, 0.5, 0.125], abs=1e-6)
    assert clipped.tolist() == [True, False, False]
    loss.sum().backward()
    assert v.grad.tolist() == pytest.approx([0.0, -1.0, 0.5], abs=1e-6)  # ∂½(V−R)²/∂V = V − R
    plain, none = value_loss(v.detach(), v_old, returns, 0.0)
    assert plain.tolist() == pytest.approx([0.5, 0.5, 0.125]) and not none.any()
    assert explained_variance(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 3.0])) == pytest.approx(1 - 0.25 / 1.0)
    assert explained_variance(torch.tensor([1.0]), torch.tensor([1.0])) is None


def config(tmp_path, *extra):
    return load_config("gridnav", overrides=[
        f"trainer.output_dir={tmp_path}", "algorithm.name=ppo", "rollout.tasks_per_step=2", "rollout.group_size=2",
        "trainer.eval_every=0", "trainer.early_stop_success=null", "trainer.dump_trajectories_every=0", *extra])


@pytest.mark.parametrize("context", ["step", "trajectory"])
def test_the_value_head_reads_the_state_right_before_the_first_action_token(tmp_path, context):
    trainer = Trainer(config(tmp_path, f"rollout.context={context}", "paw.enabled=true"))
    try:
        torch.manual_seed(0)
        torch.nn.init.normal_(trainer.critic.linear.weight)  # zero-initialised: make the check non-trivial
        batch = trainer.rollout()
        seqs = trainer.sequences(batch)
        *_, values = trainer.old_logprobs(seqs, batch.samples, with_values=True)
        model, head = trainer.model, trainer.critic
        expected = []
        with torch.no_grad():
            for s in batch.samples:  # a separate forward over what the model saw before acting
                ids = torch.tensor([s.prompt_ids])
                hidden = model(input_ids=ids, output_hidden_states=True).hidden_states[-1]
                expected.append(float(head(hidden[0, -1])))
    finally:
        trainer.close()
    if context == "trajectory":
        assert len(micro_batches(seqs, 10**6, 0, 259)[0].input_ids) == 4  # one row per episode
    assert len(values) == len(batch.samples) >= 4
    assert (values - torch.tensor(expected)).abs().max().item() <= 1e-5
    assert values.abs().max().item() > 1e-3


def test_the_critic_is_trained_saved_and_restored_on_resume(tmp_path):
    history = train(config(tmp_path, "trainer.steps=2", "trainer.save_every=1"), show_progress=False)
    assert all(m["loss/value_loss"] > 0 for m in history)
    assert {"loss/value_clip_fraction", "rollout/value_mean"} <= set(history[-1])
    saved = load_state(tmp_path / "checkpoints" / "step-000002")["critic"]
    assert saved["linear.weight"].abs().sum() > 0  # moved from its zero init
    resumed = Trainer(config(tmp_path, "trainer.steps=3", "trainer.save_every=1"), resume=True)
    try:
        for key, value in resumed.critic.state_dict().items():
            assert torch.equal(value, saved[key])
        critic_params = set(map(id, resumed.critic.parameters()))
        stepped = [p for g in resumed.optimizer.param_groups for p in g["params"] if id(p) in critic_params]
        assert len(stepped) == 2 and all(resumed.optimizer.state[p] for p in stepped)  # Adam moments restored
    finally:
        resumed.close()


# The PPO learning bar is GRPO's (tests/test_learning.py): greedy success ≤ 0.2 at the start and
# ≥ 0.9 within 200 steps, with PaW on (configs/gridnav.yaml: λ0 = 0.01). γ = 1 (GRPO's score is the
# undiscounted return too), λ = 1 and value_coef 0.1 (the defaults, verl's lam and TRL's vf_coef).
# Measured at 1 thread beside two other jobs: greedy 0.19 → 0.97 at step 110 (early stop), ~11 min;
# with γ = λ = 0.95 and value_coef 0.5 it reached 0.81 at step 140 and fell back to 0.47 (the
# from-scratch critic explains ≤ 0.2 of the return variance, so bootstrapping on it adds its bias).
# Slow-marked: ~2× the GRPO learning test; the default run covers PPO with the tests above.
@pytest.mark.slow
@pytest.mark.learning
def test_tiny_model_learns_gridnav_with_ppo_and_paw(tmp_path):
    cfg = load_config("gridnav", overrides=[f"trainer.output_dir={tmp_path}", "trainer.steps=200", "algorithm.name=ppo",
                                            "paw.enabled=true", "algorithm.gamma=1.0"])
    start = evaluate(cfg, episodes=cfg.trainer.eval_episodes, split=cfg.env.eval_split)["success_rate"]
    history = train(cfg, show_progress=False)
    evals = [m["eval/success_rate"] for m in history if "eval/success_rate" in m]
    assert start <= 0.2
    assert evals[-1] >= 0.9, f"greedy success per eval: {evals}"
    # the critic learned the return level (0.41 at the end of the measured run; its explained variance stayed
    # near 0: on this from-scratch model it is a learned baseline more than a per-state value)
    assert 0.05 < history[-1]["rollout/value_mean"] < 1.5
