"""PaW inside the trainer: the same forward pass, the plain loss when off, custom strategies."""

import pytest
import torch

from pawkit import plugins
from pawkit.config import load_config
from pawkit.hookspecs import hookimpl
from pawkit.train.trainer import Trainer


def config(tmp_path, *extra):
    return load_config(
        "gridnav",
        overrides=[f"trainer.output_dir={tmp_path}", "rollout.tasks_per_step=2", "rollout.group_size=4",
                   "trainer.eval_every=0", "trainer.early_stop_success=null", *extra],
    )


def one_step(cfg):
    trainer = Trainer(cfg)
    metrics = trainer.train_step()
    params = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.close()
    return metrics, params


def test_zero_weight_paw_gives_the_plain_rl_update(tmp_path):
    plain, plain_params = one_step(config(tmp_path / "a", "paw.enabled=false"))
    # ρ = 0: every WM token is "fitted" (p > 0), so the WM loss and its gradient are exactly 0
    # while the WM tokens still ride in the same sequences as the actions.
    paw, paw_params = one_step(config(tmp_path / "b", "paw.enabled=true", "paw.balancer=fixed", "paw.rho=0"))
    assert "paw/wm_tokens" not in plain and paw["paw/wm_tokens"] > 0
    assert paw["loss/pg_loss"] == pytest.approx(plain["loss/pg_loss"], abs=1e-6)
    assert paw["loss/entropy"] == pytest.approx(plain["loss/entropy"], abs=1e-6)
    assert paw["paw/wm_loss_weighted"] == 0.0
    # Same gradient (Adam's first step divides by |g|, so compare gradients, not parameters).
    assert paw["loss/grad_norm"] == pytest.approx(plain["loss/grad_norm"], rel=1e-5)


def test_rows_without_wm_weight_carry_no_wm_tokens(tmp_path):
    none, _ = one_step(config(tmp_path / "a", "paw.enabled=true", "paw.balancer=none"))
    fixed, _ = one_step(config(tmp_path / "b", "paw.enabled=true", "paw.balancer=fixed", "paw.keep_ratio=1"))
    assert none["paw/wm_tokens"] == 0.0
    assert fixed["paw/wm_tokens"] > 0 and fixed["paw/selected_fraction"] == pytest.approx(fixed["paw/eligible_fraction"])


def test_paw_changes_the_update_and_reports_its_metrics(tmp_path):
    plain, plain_params = one_step(config(tmp_path / "a"))
    paw, paw_params = one_step(config(tmp_path / "b", "paw.enabled=true", "paw.balancer=fixed", "paw.lambda0=1.0"))
    assert paw["paw/wm_loss_weighted"] > 0 and paw["paw/wm_loss_raw"] > 0
    assert 0.0 <= paw["paw/wm_token_accuracy"] <= 1.0 and 0.0 < paw["paw/wm_target_prob"] < 1.0
    assert paw["paw/lambda_mean"] == 1.0 and paw["paw/lambda_std"] == 0.0
    assert any(not torch.allclose(a, b) for a, b in zip(plain_params, paw_params))


def test_metrics_do_not_change_with_ppo_epochs_when_the_policy_does_not(tmp_path):
    # lr ~ 0: every epoch sees the same parameters, so every epoch's losses are the same and the
    # step's means over epochs must equal the single epoch's (paw/wm_loss_raw once doubled).
    extra = ("paw.enabled=true", "paw.balancer=fixed", "trainer.lr=1e-30")
    one, _ = one_step(config(tmp_path / "a", *extra, "algorithm.ppo_epochs=1"))
    two, _ = one_step(config(tmp_path / "b", *extra, "algorithm.ppo_epochs=2"))
    keys = [k for k in one if k.startswith(("loss/", "paw/"))]
    assert {"loss/pg_loss", "loss/grad_norm", "paw/wm_loss_raw", "paw/wm_loss_weighted", "paw/wm_token_accuracy"} <= set(keys)
    assert one["paw/wm_loss_raw"] > 0 and one["paw/wm_tokens"] > 0
    for key in keys:
        assert two[key] == pytest.approx(one[key], rel=1e-6, abs=1e-12), key
    # Each epoch's gradient norm is kept (only when there is more than one epoch).
    assert not any(k.startswith("loss/grad_norm_epoch") for k in one)
    assert two["loss/grad_norm_epoch1"] == pytest.approx(two["loss/grad_norm_epoch2"], rel=1e-6)
    assert two["loss/grad_norm"] == pytest.approx((two["loss/grad_norm_epoch1"] + two["loss/grad_norm_epoch2"]) / 2)


CALLS = []


class _Strategies:
    @hookimpl
    def register_selectors(self, register):
        def first_half(entropies, cfg, generator):
            """Keep the first half of the batch (a test strategy)."""
            CALLS.append(len(entropies))
            mask = torch.zeros(len(entropies), dtype=torch.bool)
            mask[: len(entropies) // 2] = True
            return mask

        register("first_half", first_half)


def test_custom_strategy_is_picked_by_config_and_called(tmp_path):
    name = plugins.register_plugin(_Strategies(), name="test-strategies")
    try:
        metrics, _ = one_step(config(tmp_path, "paw.enabled=true", "paw.selector=first_half"))
    finally:
        plugins.unregister_plugin(name)
    assert len(CALLS) == 1
    assert metrics["paw/selected_fraction"] == pytest.approx((CALLS[0] // 2) / CALLS[0])


def test_unknown_strategy_fails_before_loading_a_model(tmp_path):
    with pytest.raises(plugins.PluginError, match="unknown selector 'nope'.*available: all, entropy"):
        Trainer(config(tmp_path, "paw.enabled=true", "paw.selector=nope"))


def test_example_strategy_package_registers_through_its_entry_point():
    from pawkit.config import PawConfig

    entry = plugins.registry("balancer").get("squared_gap")
    assert entry.plugin == "example_strategy"
    from pawkit.strategies import GroupRows, StepRows, StrategyContext

    groups = GroupRows(["a", "b", "c"], [1.0, 0.5, 0.0], [1, 1, 1], [1.0, 0.5, 0.0])
    weights = entry.obj(StrategyContext(cfg=PawConfig(lambda0=0.05), groups=groups, max_return=1.0))
    assert weights.tolist() == pytest.approx([0.0, 0.0125, 0.05])
    selector = plugins.get("selector", "middle_entropy")
    rows = StepRows(list("abcd"), ["t"] * 4, [0, 1, 2, 3], [0.0] * 4, [0.0] * 4, [""] * 4, [False] * 4,
                    action_entropy=[0.1, 0.5, 0.9, 0.4])
    mask = selector(StrategyContext(cfg=PawConfig(keep_ratio=0.5), rows=rows, generator=torch.Generator()))
    assert mask.tolist() == [False, True, False, True]  # median 0.4: distances 0.3, 0.1, 0.5, 0.0
