"""Sampled evaluation: pass@k and best-of-k return (pawkit/train/pass_at_k.py), in the trainer's
evaluation and in the sweep's records."""

import json
from itertools import combinations

import pytest

from pawkit.config import ConfigError, load_config
from pawkit.protocol import Episode
from pawkit.train.pass_at_k import best_of_k, pass_at_k, sampled_summary


def ep(task: str, ret: float, success: bool | None = None, reason: str = "done") -> Episode:
    return Episode(env="e", task_id=task, group_id=task, **{"return": ret},
                   success=ret == 1.0 if success is None else success, end_reason=reason)


def test_pass_at_k_by_hand():
    # 4 samples, 1 success: pass@1 = 1/4; pass@4 = 1; pass@2 = 1 − C(3,2)/C(4,2) = 1 − 3/6
    assert pass_at_k(4, 1, 1) == 0.25 and pass_at_k(4, 1, 4) == 1.0 and pass_at_k(4, 1, 2) == 0.5
    assert pass_at_k(4, 0, 4) == 0.0 and pass_at_k(4, 4, 1) == 1.0
    for bad in ((4, 5, 1), (4, 1, 0), (4, 1, 5), (3, -1, 1)):
        with pytest.raises(ValueError):
            pass_at_k(*bad)


def test_best_of_k_is_the_mean_maximum_over_every_k_subset():
    returns = [0.2, 0.9, 0.5, 0.5]
    for k in range(1, 5):
        brute = sum(max(s) for s in combinations(returns, k)) / len(list(combinations(returns, k)))
        assert best_of_k(returns, k) == pytest.approx(brute, abs=1e-12)
    assert best_of_k(returns, 1) == pytest.approx(0.525)  # the mean
    assert best_of_k(returns, 4) == 0.9  # the maximum
    # 0/1 returns: best-of-k is pass@k
    assert best_of_k([1.0, 0.0, 0.0, 0.0], 2) == pass_at_k(4, 1, 2)
    with pytest.raises(ValueError):
        best_of_k([0.1], 2)


def test_summary_uses_one_task_set_for_every_k_and_drops_env_errors():
    episodes = [ep("a", 1.0), ep("a", 0.0), ep("a", 0.0), ep("a", 0.0),
                ep("b", 0.5), ep("b", 0.25), ep("b", 0.0, reason="env_error"), ep("b", 0.75)]
    out = sampled_summary(episodes, [4, 1])
    # task b kept 3 of 4 episodes: it leaves every k (pass@1 and pass@4 describe the same tasks)
    assert out == {"sampled_tasks": 1.0, "samples_per_task": 4.0, "sampled_env_errors": 1.0,
                   "pass@1": 0.25, "pass@1_ci95_low": 0.25, "pass@1_ci95_high": 0.25,
                   "best_of_k_return@1": 0.25, "best_of_k_return@1_ci95_low": 0.25, "best_of_k_return@1_ci95_high": 0.25,
                   "pass@4": 1.0, "pass@4_ci95_low": 1.0, "pass@4_ci95_high": 1.0,
                   "best_of_k_return@4": 1.0, "best_of_k_return@4_ci95_low": 1.0, "best_of_k_return@4_ci95_high": 1.0}
    two = sampled_summary([ep("a", 1.0), *[ep("a", 0.0)] * 3, *[ep("c", 0.0)] * 4], [1])
    # pass@1 values 0.25 and 0: mean 0.125, t half-width t(1)·0.125 = 1.588; clipped to [0, 1]
    assert (two["pass@1"], two["pass@1_ci95_low"], two["pass@1_ci95_high"]) == (0.125, 0.0, 1.0)
    # a return has no known bound: its interval is not clipped
    assert two["best_of_k_return@1_ci95_low"] == pytest.approx(0.125 - 12.7062 * 0.125, abs=1e-9)
    with pytest.raises(ValueError, match="no task kept 1 sampled episodes"):
        sampled_summary([ep("a", 0.0, reason="env_error")], [1])


def test_bad_k_is_refused_by_the_config():
    with pytest.raises(ConfigError, match="eval_pass_k"):
        load_config("gridnav", overrides=["trainer.eval_pass_k=[1,0]"])


def test_the_trainer_logs_pass_at_k_after_its_eval_without_moving_training(tmp_path):
    """gridnav, tiny model: one step then the greedy eval, then 18 tasks × 4 samples at the training
    temperature. The sampled eval is played under the trainer's saved RNG state: the next step is
    the one a run without it takes."""
    from pawkit.train.trainer import train

    base = ["trainer.steps=2", "rollout.tasks_per_step=2", "rollout.group_size=2", "trainer.eval_every=1",
            "trainer.eval_episodes=4", "paw.enabled=false", "trainer.save_every=10"]
    with_k = train(load_config("gridnav", overrides=[*base, f"trainer.output_dir={tmp_path / 'k'}",
                                                     "trainer.eval_pass_k=[1,4]", "trainer.eval_pass_tasks=30"]), show_progress=False)
    without = train(load_config("gridnav", overrides=[*base, f"trainer.output_dir={tmp_path / 'plain'}"]), show_progress=False)
    last = with_k[-1]
    # 30 asked, the split has 18: each is played 4 times, none twice over
    from pawkit.rollout.envpool import build_env

    split = len(list(build_env("gridnav", {}).tasks(load_config("gridnav").env.eval_split)))
    assert split == 18
    assert (last["eval/sampled_tasks"], last["eval/samples_per_task"], last["eval/sampled_env_errors"]) == (18.0, 4.0, 0.0)
    assert 0.0 <= last["eval/pass@1"] <= last["eval/pass@4"] <= 1.0
    assert last["eval/best_of_k_return@1"] <= last["eval/best_of_k_return@4"]
    assert last["perf/sampled_eval_seconds"] > 0
    for a, b in zip(with_k, without):  # same training and greedy eval, step by step
        for key in ("rollout/mean_return", "loss/pg_loss", "eval/mean_return", "eval/success_rate"):
            assert a[key] == b[key], key
    # the sweep's record keeps the final sampled numbers without their intervals
    from pawkit.experiments.results import summarize_run

    record = summarize_run(tmp_path / "k")
    assert list(record["final_sampled"]) == ["pass@1", "pass@4", "best_of_k_return@1", "best_of_k_return@4"]
    assert record["final_sampled"]["pass@4"] == last["eval/pass@4"]
    assert json.loads((tmp_path / "k" / "metrics.jsonl").read_text().splitlines()[-1])["eval/pass@4"] == last["eval/pass@4"]
