"""The strategy extension API: what a strategy sees (StrategyContext), its options, metrics and
state across a resume, and the boundary checks on what it returns (pawkit/train/strategy_calls.py)."""

from __future__ import annotations

import json
import math
import sys

import pytest
import torch

from pawkit import cli, plugins
from pawkit.config import Config, ConfigError, PawConfig, load_config
from pawkit.hookspecs import hookimpl
from pawkit.strategies import GroupRows, StepRows, StrategyContext
from pawkit.train.strategy_calls import RunStrategies, StrategyError
from pawkit.train.trainer import Trainer, train


def config(tmp_path, *extra):
    return load_config(
        "gridnav",
        overrides=[f"trainer.output_dir={tmp_path}", "rollout.tasks_per_step=2", "rollout.group_size=2",
                   "trainer.eval_every=0", "trainer.early_stop_success=null", "trainer.eval_before_after=false",
                   "trainer.dump_trajectories_every=0", "paw.enabled=true", *extra],
    )


# --- test-only strategies: a spy and contract breakers -------------------------------------

SEEN: list[StrategyContext] = []


def spy(ctx):
    """Every eligible transition, remembering what it was shown."""
    SEEN.append(ctx)
    return torch.ones(len(ctx.rows), dtype=torch.bool)


def short_mask(ctx):
    return torch.ones(len(ctx.rows) - 1, dtype=torch.bool)


def float_mask(ctx):
    return torch.ones(len(ctx.rows))


def scalar_lambda(ctx):
    return 0.05


def nan_lambda(ctx):
    return torch.tensor([float("nan")] * len(ctx.groups))


def negative_lambda(ctx):
    return torch.full((len(ctx.groups),), -0.5)


def nan_advantage(ctx):
    return torch.full((len(ctx.rows),), float("nan"))


def nan_wm_loss(target_logprobs, mask, ctx):
    return torch.full((target_logprobs.shape[0],), float("nan"))


def legacy_selector(entropies, cfg, generator):
    return entropies > entropies.median()


@hookimpl
def register_selectors(register):
    for fn in (spy, short_mask, float_mask, legacy_selector):
        register(fn.__name__, fn)


@hookimpl
def register_balancers(register):
    for fn in (scalar_lambda, nan_lambda, negative_lambda):
        register(fn.__name__, fn)


@hookimpl
def register_advantage_estimators(register):
    register("nan_advantage", nan_advantage)


@hookimpl
def register_wm_losses(register):
    register("nan_wm_loss", nan_wm_loss)


@pytest.fixture(scope="module", autouse=True)
def _plugin():
    name = plugins.register_plugin(sys.modules[__name__], name="api-test")
    yield
    plugins.unregister_plugin(name)


# --- what a strategy sees -------------------------------------------------------------------


def test_selector_sees_the_step_texts_tokens_and_entropies_of_each_transition(tmp_path):
    SEEN.clear()
    trainer = Trainer(config(tmp_path, "paw.selector=spy", "trainer.steps=2"))
    try:
        trainer.train_step()
        batch = trainer.last_batch
        trainer.train_step()
    finally:
        trainer.close()
    first, second = SEEN
    assert (first.step, second.step, first.kind, first.name) == (1, 2, "selector", "spy")
    rows = first.rows
    # gridnav: every step has a next observation, so every transition is eligible.
    assert len(rows) == len(batch.samples)  # rows are the samples, in order
    for k, sample in enumerate(batch.samples):
        assert (rows.traj_ids[k], rows.step_index[k]) == (sample.traj_id, sample.step_index)
        assert rows.next_observation_text[k] == sample.next_observation_text
        assert rows.prompt_tokens[k] == len(sample.prompt_ids) and rows.action_tokens[k] == len(sample.response_ids)
        assert rows.target_tokens[k] > 0
    # The texts and rewards are the episodes' transitions, as the env produced them.
    fmt = trainer.env.format_observation
    from_rows = sorted(zip(rows.observation_text, rows.action_text, rows.reward, rows.next_observation_text))
    from_episodes = sorted((fmt(t.observation), t.action.command, t.reward, fmt(t.next_observation))
                           for e in batch.episodes for t in e.transitions)
    assert from_rows == from_episodes
    assert len(rows.action_entropy) == len(rows) and all(e >= 0 for e in rows.action_entropy)
    assert first.groups.group_ids == list(dict.fromkeys(rows.group_ids)) and first.groups.episodes == [2, 2]
    assert first.max_return == trainer.env.max_return and first.generator is trainer.state.selector_gen


def test_legacy_positional_selector_still_works_with_a_deprecation_warning():
    cfg = Config(paw=PawConfig(enabled=True, selector="legacy_selector"))
    with pytest.warns(DeprecationWarning, match="selector 'legacy_selector' \\(plugin 'api-test'\\) uses the old positional signature"):
        strategies = RunStrategies(cfg)
    rows = StepRows(list("abcd"), ["t"] * 4, [0, 1, 2, 3], [0.0] * 4, [0.0] * 4, [""] * 4, [False] * 4,
                    action_entropy=[0.1, 0.5, 0.9, 0.4])
    groups = GroupRows(list("abcd"), [0.0] * 4, [1] * 4, [0.0] * 4)
    assert strategies.select(rows, groups, 1, 1.0, torch.Generator()).tolist() == [False, True, True, False]


# --- boundary checks: one error naming the hook, the strategy and its plugin ----------------

ROWS = StepRows(list("aabb"), ["t0", "t0", "t1", "t1"], [0, 1, 0, 1], [0.0] * 4, [0.0, 0.0, 1.0, 1.0], [""] * 4,
                [False] * 4, action_entropy=[0.1, 0.5, 0.9, 0.4])
GROUPS = GroupRows(["a", "b"], [0.0, 1.0], [1, 1], [0.0, 1.0])


@pytest.mark.parametrize(
    "override, call, message",
    [
        ("paw.selector=short_mask", "select", "selector 'short_mask' (plugin 'api-test') returned shape [3]; expected [4] (a bool mask over the eligible transitions)"),
        ("paw.selector=float_mask", "select", "selector 'float_mask' (plugin 'api-test') returned dtype torch.float32; a selector returns a torch.bool mask"),
        ("paw.balancer=scalar_lambda", "balance", "balancer 'scalar_lambda' (plugin 'api-test') returned float, not a torch.Tensor of shape [2] (one λ per rollout group)"),
        ("paw.balancer=nan_lambda", "balance", "balancer 'nan_lambda' (plugin 'api-test') returned a non-finite λ (nan) for group 0"),
        ("paw.balancer=negative_lambda", "balance", "balancer 'negative_lambda' (plugin 'api-test') returned λ = -0.5 < 0 for group 0 (mean return 0, max_return 1.0); λ must be ≥ 0 — a negative weight would train the model to mispredict"),
        ("algorithm.name=nan_advantage", "advantages", "advantage_estimator 'nan_advantage' (plugin 'api-test') returned a non-finite advantage (nan) for transition 0"),
    ],
)
def test_a_contract_violation_is_one_error_naming_the_strategy(override, call, message):
    strategies = RunStrategies(load_config("gridnav", overrides=["paw.enabled=true", override]))
    with pytest.raises(StrategyError) as err:
        getattr(strategies, call)(ROWS, GROUPS, 1, 1.0, torch.Generator())
    assert str(err.value) == message


def test_a_wm_loss_that_turns_finite_logprobs_into_nan_is_named_but_a_broken_model_is_not():
    strategies = RunStrategies(Config(paw=PawConfig(enabled=True, wm_loss="nan_wm_loss")))
    loss = strategies.wm_loss(1, None, ROWS)
    mask = torch.ones(2, 3, dtype=torch.bool)
    with pytest.raises(StrategyError, match=r"^wm_loss 'nan_wm_loss' \(plugin 'api-test'\) returned a non-finite loss \(nan\) for row 0 from finite log-probs$"):
        loss(torch.full((2, 3), -1.0), mask, [0, 1])
    # NaN log-probs in (the model's fault): passed through, the update is skipped as non-finite.
    assert loss(torch.full((2, 3), float("nan")), mask, [0, 1]).isnan().all()


def test_a_contract_violation_in_a_run_is_one_line_and_exit_2(tmp_path, capsys):
    args = ["train", "--env", "gridnav", "--quiet", f"trainer.output_dir={tmp_path}", "rollout.tasks_per_step=2",
            "rollout.group_size=2", "trainer.steps=1", "trainer.eval_before_after=false", "paw.enabled=true",
            "paw.balancer=nan_lambda"]
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: balancer 'nan_lambda' (plugin 'api-test') returned a non-finite λ (nan) for group 0"]


# --- options, metrics, state (the example strategy package) ---------------------------------


def test_unknown_or_invalid_options_are_refused_before_the_model_loads():
    with pytest.raises(ConfigError) as err:
        RunStrategies(load_config("gridnav", overrides=["paw.enabled=true", "paw.balancer=step_decay", "paw.options.half_life=abc", "paw.options.half_lif=2"]))
    assert str(err.value).splitlines() == [
        "invalid value for 'paw.options.half_life': 'abc' (Input should be a valid number, unable to parse string as a number; an option of balancer 'step_decay')",
        "unknown option 'paw.options.half_lif': the run's strategies take half_life (balancer 'step_decay')",
    ]
    with pytest.raises(ConfigError, match=r"^unknown option 'algorithm.options.x': the run's strategies take none$"):
        RunStrategies(load_config("gridnav", overrides=["algorithm.options.x=1"]))


def test_plugins_explain_lists_each_strategys_options(capsys):
    assert cli.main(["plugins", "--explain", "--json"]) == 0
    balancers = {e["name"]: e for e in json.loads(capsys.readouterr().out)["balancer"]}
    assert balancers["step_decay"]["options"] == [
        {"key": "paw.options.half_life", "type": "float", "default": 10.0, "required": False,
         "description": "updates after which λ has halved"}
    ]
    assert balancers["reward_adaptive"]["options"] == []


def _steps(path):
    return [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]


def test_a_stateful_balancer_resumes_to_the_uninterrupted_lambda_sequence(tmp_path):
    extra = ("paw.balancer=step_decay", "paw.options.half_life=2", "paw.selector=observation_change",
             "trainer.save_every=1", "paw.lambda0=0.5")
    train(config(tmp_path / "whole", "trainer.steps=4", *extra), show_progress=False)
    train(config(tmp_path / "split", "trainer.steps=2", *extra), show_progress=False)
    train(config(tmp_path / "split", "trainer.steps=4", *extra), resume=True, show_progress=False)
    whole, split = _steps(tmp_path / "whole"), _steps(tmp_path / "split")
    decay = [0.5 ** (k / 2) for k in range(4)]  # 1, 0.707, 0.5, 0.354: no restart at step 3
    assert [m["paw/step_decay/decay"] for m in whole] == pytest.approx(decay, rel=1e-12)
    assert [m["paw/step_decay/decay"] for m in split] == pytest.approx(decay, rel=1e-12)
    assert [m["paw/lambda_mean"] for m in split] == pytest.approx([m["paw/lambda_mean"] for m in whole], rel=1e-9)
    assert all(0.0 <= m["paw/observation_change/mean_change"] <= 1.0 for m in whole)
    assert [m["paw/observation_change/mean_change"] for m in split] == pytest.approx(
        [m["paw/observation_change/mean_change"] for m in whole], rel=1e-12)
    assert not math.isclose(whole[3]["paw/step_decay/decay"], 1.0)
