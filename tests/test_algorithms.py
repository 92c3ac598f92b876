"""Loss aggregation modes and zero-variance group filtering / dynamic sampling (issue #21, items 2-3).

- Each ``algorithm.loss_aggregation`` has its exact value on a crafted 3-row batch of 1, 2 and
  4 tokens, the same whatever the rows' split into micro-batches, and the trainer's loss and
  gradient do not change with ``trainer.micro_batch_tokens`` (≤1e-6).
- ``algorithm.filter_groups=zero_variance`` takes exactly the groups whose scores are all equal
  out of the RL loss (a crafted env whose reward depends on the task); ``resample=true`` plays
  extra rounds until ``tasks_per_step`` informative groups are found or the cap is hit; PaW keeps
  the filtered groups as WM data unless ``filter_wm=drop``.
"""

from __future__ import annotations

import typing

import pytest
import torch

from pawkit import plugins
from pawkit.config import AlgorithmConfig, ConfigError, load_config
from pawkit.hookspecs import hookimpl
from pawkit.protocol import Env, Observation, StepResult, Task
from pawkit.train.aggregation import AGGREGATIONS
from pawkit.train.batching import micro_batches
from pawkit.train.filtering import GROUP_FILTERS, sample_step
from pawkit.train.metrics import Metrics
from pawkit.train.trainer import Trainer

# ------------------------------------------------------------------ aggregation, pure tensors

# Three rows of 1, 2 and 4 action tokens (right-padded to 4) and their per-token losses.
VALUES = torch.tensor([[2.0, 9.0, 9.0, 9.0], [1.0, 3.0, 9.0, 9.0], [1.0, 2.0, 3.0, 4.0]], dtype=torch.float64)
MASK = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
# token sums 2, 4, 10 (16 over 7 tokens); token means 2, 2, 2.5
EXPECTED = {
    "token_mean": 16 / 7,
    "seq_mean_token_mean": (2 + 2 + 2.5) / 3,
    "seq_mean_token_sum_norm": (2 + 4 + 10) / (3 * 8),  # L = rollout.max_new_tokens = 8
}


def test_the_config_offers_exactly_the_registered_modes_and_filters():
    fields = AlgorithmConfig.model_fields
    assert set(typing.get_args(fields["loss_aggregation"].annotation)) == set(AGGREGATIONS)
    assert set(typing.get_args(fields["filter_groups"].annotation)) == set(GROUP_FILTERS)


@pytest.mark.parametrize("mode", sorted(EXPECTED))
def test_each_aggregation_has_its_exact_value_on_three_rows_of_different_lengths(mode):
    agg = AGGREGATIONS[mode]
    assert agg.value(VALUES, MASK, max_tokens=8).item() == pytest.approx(EXPECTED[mode], abs=1e-12)
    # Any split into micro-batches, with the step's denominator, sums to the same number.
    denominator = agg.count(MASK.sum(-1))
    assert denominator == (7 if mode == "token_mean" else 3)
    for split in ([[0], [1], [2]], [[0, 2], [1]], [[2], [0, 1]]):
        total = sum(agg.contribution(VALUES[i], MASK[i], denominator, 8) for i in split)
        assert total.item() == pytest.approx(EXPECTED[mode], abs=1e-12)


def test_the_modes_differ_where_lengths_differ_and_agree_where_they_do_not():
    values = {m: AGGREGATIONS[m].value(VALUES, MASK, 8).item() for m in EXPECTED}
    assert len({round(v, 6) for v in values.values()}) == 3
    same = torch.ones(3, 4, dtype=torch.bool)  # every row 4 tokens = L: all three are the token mean
    assert {round(AGGREGATIONS[m].value(VALUES, same, 4).item(), 6) for m in EXPECTED} == {round(VALUES.mean().item(), 6)}


def test_a_row_without_tokens_counts_in_no_denominator():
    mask = MASK.clone()
    mask[0] = False
    for mode, agg in AGGREGATIONS.items():
        assert agg.count(mask.sum(-1)) == (6 if mode == "token_mean" else 2)
    assert AGGREGATIONS["seq_mean_token_mean"].value(VALUES, mask, 8).item() == pytest.approx((2 + 2.5) / 2)


# ------------------------------------------------------------------ aggregation in the update


def gridnav(tmp_path, *extra):
    return load_config("gridnav", overrides=[
        f"trainer.output_dir={tmp_path}", "rollout.tasks_per_step=2", "rollout.group_size=4", "trainer.eval_every=0",
        "trainer.early_stop_success=null", "algorithm.old_logprobs=recompute", "trainer.lr=1e-9", *extra])


def captured_update(trainer, batch, budget):
    """learn() on ``batch`` with ``micro_batch_tokens=budget``: (metrics, gradient), no optimizer step."""
    trainer.cfg.trainer.micro_batch_tokens = budget
    grads = []
    trainer._step_optimizer = lambda metrics, epoch=0: grads.append(
        torch.cat([p.grad.reshape(-1).clone() for p in trainer.model.parameters() if p.grad is not None]))
    metrics = Metrics()
    trainer.learn(batch, metrics)
    return metrics.result(), grads[0]


@pytest.mark.parametrize("mode", sorted(EXPECTED))
def test_the_update_is_the_same_whatever_the_micro_batches(tmp_path, mode):
    trainer = Trainer(gridnav(tmp_path, f"algorithm.loss_aggregation={mode}", "algorithm.entropy_coef=0.01"))
    try:
        batch = trainer.rollout()
        seqs = trainer.sequences(batch)
        pad, vocab = trainer.tokenizer.pad_token_id, len(trainer.tokenizer)
        assert len(micro_batches(seqs, 100_000, pad, vocab)) == 1 and len(micro_batches(seqs, 16, pad, vocab)) == len(seqs)
        whole, g_whole = captured_update(trainer, batch, 100_000)
        split, g_split = captured_update(trainer, batch, 16)
        assert (g_whole - g_split).abs().max().item() <= 1e-6 and g_whole.abs().max().item() > 0
        assert split["loss/pg_loss"] == pytest.approx(whole["loss/pg_loss"], abs=1e-6)
        # One epoch: the ratio is 1, so the PPO term is −A aggregated by the mode, exactly.
        adv = trainer.advantages(batch).double()
        n = torch.tensor([len(s.response_ids) for s in batch.samples], dtype=torch.float64)
        expected = {"token_mean": -(adv * n).sum() / n.sum(), "seq_mean_token_mean": -adv.mean(),
                    "seq_mean_token_sum_norm": -(adv * n).sum() / (len(n) * trainer.cfg.rollout.max_new_tokens)}[mode]
        assert whole["loss/pg_loss"] == pytest.approx(float(expected), abs=1e-5)
    finally:
        trainer.close()


# ------------------------------------------------------------------ filtering: a crafted env


class Scoreboard(Env):
    """One step, one admissible action; a ``fixed-R`` task always returns R, a ``vary-*`` task
    alternates 0, 1, 0, 1 over resets (group members reset one after another, so each group of
    two returns {0, 1}): exactly the fixed tasks' groups have zero variance."""

    name = "algotest/scoreboard"
    max_return = 1.0
    max_steps = 1
    resets = 0

    def __init__(self, tasks: str = "fixed-0,fixed-1,vary-a,vary-b"):
        self.names = tasks.split(",")
        self.reward = 0.0

    def tasks(self, split="train"):
        return [Task(id=n, split=split, seed=i) for i, n in enumerate(self.names)]

    def reset(self, task=None, seed=None):
        Scoreboard.resets += 1
        tid = task.id if task is not None else "fixed-0"
        self.reward = float(tid.split("-")[1]) if tid.startswith("fixed-") else float(Scoreboard.resets % 2)
        return Observation(text="press go", admissible_actions=["go"], task="press go")

    def step(self, command):
        return StepResult(observation=Observation(text="pressed"), reward=self.reward, done=True, success=self.reward > 0)


class ScoreboardPlugin:
    @hookimpl
    def register_envs(self, register):
        register("algotest/scoreboard", Scoreboard, description="crafted rewards for tests/test_algorithms.py")


@pytest.fixture
def scoreboard():
    name = plugins.register_plugin(ScoreboardPlugin(), name="algotest-scoreboard")
    yield
    plugins.unregister_plugin(name)


def board(tmp_path, *extra):
    return load_config(overrides=[
        "env.name=algotest/scoreboard", "env.eval_split=train", "model.name=tiny", f"trainer.output_dir={tmp_path}",
        "rollout.tasks_per_step=4", "rollout.group_size=2", "rollout.output_format=plain", "rollout.constrained=true",
        "rollout.prompt_style=compact", "rollout.chat_template=false", "rollout.max_new_tokens=4",
        "rollout.history_length=0", "algorithm.kl_coef=0", "trainer.eval_every=0", "trainer.early_stop_success=null",
        "algorithm.filter_groups=zero_variance", "paw.enabled=false", *extra])  # plain RL unless a test turns PaW on


def tasks_of(batch):
    return {e.group_id: e.task_id for e in batch.episodes}


def test_zero_variance_filters_exactly_the_groups_whose_scores_are_all_equal(tmp_path, scoreboard):
    trainer = Trainer(board(tmp_path))
    try:
        step = sample_step(trainer.rollout, trainer.cfg)
        task = tasks_of(step.played)
        assert len(task) == 4 and step.rounds == 0 and step.extra_episodes == 0
        assert step.filtered == [g for g in task if task[g].startswith("fixed-")]
        assert step.rl_groups == {g for g in task if task[g].startswith("vary-")}
        assert {s.group_id for s in step.kept.samples} == step.rl_groups  # no PaW: filtered groups leave the batch
        metrics = Metrics()
        step.record(metrics)
        assert metrics.result()["rollout/filtered_group_fraction"] == len(step.filtered) / 4
        # The whole step: the same metric, and only the informative groups' tokens in the RL loss.
        out = trainer.train_step()
        task = tasks_of(trainer.last_batch)
        fixed = sum(t.startswith("fixed-") for t in task.values())
        assert out["rollout/filtered_group_fraction"] == fixed / 4 and out["rollout/resample_rounds"] == 0
        rl_tokens = sum(len(s.response_ids) for s in trainer.last_batch.samples if task[s.group_id].startswith("vary-"))
        assert out.get("rollout/action_tokens", 0) == rl_tokens
    finally:
        trainer.close()


def test_without_a_filter_every_group_is_trained_on(tmp_path, scoreboard):
    trainer = Trainer(board(tmp_path, "algorithm.filter_groups=none"))
    try:
        step = sample_step(trainer.rollout, trainer.cfg)
        assert step.filtered == [] and step.kept is step.played and step.rl_groups == set(tasks_of(step.played))
    finally:
        trainer.close()


def test_resample_plays_the_capped_number_of_rounds_when_no_group_is_informative(tmp_path, scoreboard):
    cfg = board(tmp_path, "env.options.tasks=fixed-0,fixed-1", "algorithm.resample=true", "algorithm.max_resample_rounds=2")
    trainer = Trainer(cfg)
    try:
        out = trainer.train_step()
        assert out["rollout/resample_rounds"] == 2 and out["rollout/extra_episodes"] == 2 * 4 * 2
        assert out["rollout/episodes"] == 3 * 4 * 2 and out["rollout/filtered_group_fraction"] == 1.0
        assert trainer.optimizer_steps == 0  # nothing informative, nothing to learn from
    finally:
        trainer.close()


def test_resample_stops_once_enough_informative_groups_are_found(tmp_path, scoreboard):
    trainer = Trainer(board(tmp_path, "algorithm.resample=true", "algorithm.max_resample_rounds=5"))
    try:
        step = sample_step(trainer.rollout, trainer.cfg)
        eps = step.played.episodes
        assert len(eps) == (step.rounds + 1) * 8 and step.extra_episodes == step.rounds * 8
        found, stop = [], None
        for r in range(step.rounds + 1):  # replay the rounds: stop at the first with ≥ 4 informative groups
            found += list(dict.fromkeys(e.group_id for e in eps[r * 8:(r + 1) * 8] if e.task_id.startswith("vary-")))
            if len(found) >= 4:
                stop = r
                break
        assert step.rounds == (stop if stop is not None else 5)
        assert step.rl_groups == set(found[:4]) and len(step.rl_groups) == min(4, len(found))
        assert step.filtered == list(dict.fromkeys(e.group_id for e in eps if e.task_id.startswith("fixed-")))
    finally:
        trainer.close()


@pytest.mark.parametrize("filter_wm", ["keep", "drop"])
def test_paw_keeps_filtered_groups_as_world_model_data_unless_told_to_drop_them(tmp_path, scoreboard, filter_wm):
    trainer = Trainer(board(tmp_path, "paw.enabled=true", "paw.selector=all", "paw.balancer=fixed", f"algorithm.filter_wm={filter_wm}"))
    try:
        step = sample_step(trainer.rollout, trainer.cfg)
        task = tasks_of(step.played)
        kept = {s.group_id for s in step.kept.samples}
        assert kept == (set(task) if filter_wm == "keep" else step.rl_groups)
        metrics = Metrics()
        trainer.learn(step.kept, metrics, step.rl_groups)
        out = metrics.result()
        rl = [s for s in step.kept.samples if s.group_id in step.rl_groups]
        assert out.get("rollout/action_tokens", 0) == sum(len(s.response_ids) for s in rl)
        seqs = trainer.sequences(step.kept)
        assert out["paw/wm_tokens"] == sum(len(q.wm_ids) for q in seqs)  # every kept row is WM data
    finally:
        trainer.close()


def test_resample_without_a_filter_is_refused():
    with pytest.raises(ConfigError, match="algorithm.resample=true needs algorithm.filter_groups"):
        load_config("gridnav", overrides=["algorithm.resample=true"])
