"""``paw.targets``: the WM-target registry — next_observation (PaW) and the shuffled control."""

import pytest
import torch

from pawkit.config import ConfigError, load_config
from pawkit.plugins import registry
from pawkit.strategies import StepRows, StrategyContext
from pawkit.train.paw import wm_target_ids
from pawkit.train.trainer import Trainer
from pawkit_plugins.wm_targets import next_observation, shuffled


def ctx(texts, seed=0):
    n = len(texts)
    rows = StepRows(group_ids=["g"] * n, traj_ids=["t"] * n, step_index=list(range(n)), reward=[0.0] * n,
                    episode_return=[0.0] * n, anchor=[""] * n, invalid=[False] * n, next_observation_text=texts)
    return StrategyContext(cfg=None, rows=rows, generator=torch.Generator().manual_seed(seed))


def test_shuffled_is_a_seeded_derangement_of_the_rows_with_a_next_observation():
    texts = ["a", "b", None, "c", "d"]
    # torch.randperm(4, seed 0) = [0, 1, 3, 2] over the rows with text [0, 1, 3, 4] → order 0, 1, 4, 3;
    # each row in that order takes the next one's text (cyclically): 0←1, 1←4, 4←3, 3←0
    assert shuffled(ctx(texts)) == ["b", "d", None, "a", "c"]
    assert shuffled(ctx(texts)) == shuffled(ctx(texts))  # seeded
    for seed in range(20):
        out = shuffled(ctx(texts, seed))
        assert sorted(t for t in out if t) == ["a", "b", "c", "d"] and out[2] is None
        assert all(o != t for o, t in zip(out, texts) if t is not None)  # nobody keeps its own
    assert shuffled(ctx(["only", None])) == ["only", None]  # a lone target cannot move
    assert next_observation(ctx(texts)) == texts


def test_both_are_registered_and_listed():
    names = registry("wm_targets").names()
    assert {"next_observation", "shuffled"} <= set(names)


def config(tmp_path, *extra):
    return load_config("gridnav", overrides=[f"trainer.output_dir={tmp_path}", "rollout.tasks_per_step=2", "rollout.group_size=4",
                                             "trainer.eval_every=0", "paw.enabled=true", *extra])


def test_the_trainer_trains_on_the_strategys_targets(tmp_path):
    trainer = Trainer(config(tmp_path, "paw.targets=shuffled"))
    try:
        batch = trainer.rollout()
        gen_state = trainer.state.selector_gen.get_state()
        seqs = trainer.sequences(batch)
        trainer.state.selector_gen.set_state(gen_state)
        expected = shuffled(trainer.strategies.context("wm_targets", None, rows=trainer.step_rows(batch),
                                                       generator=trainer.state.selector_gen))
        metrics = trainer.train_step()
    finally:
        trainer.close()
    own = [wm_target_ids(trainer.tokenizer, s.next_observation_text, trainer.cfg.paw) for s in batch.samples]
    got = [q.wm_ids for q in seqs]
    assert got == [wm_target_ids(trainer.tokenizer, t, trainer.cfg.paw) for t in expected]
    assert sum(a != b for a, b in zip(got, own)) >= len(got) // 2  # mostly someone else's observation
    assert metrics["paw/wm_tokens"] > 0


def test_next_observation_is_the_default_and_leaves_targets_unchanged(tmp_path):
    cfg = config(tmp_path)
    assert cfg.paw.targets == "next_observation"
    trainer = Trainer(cfg)
    try:
        batch = trainer.rollout()
        seqs = trainer.sequences(batch)
    finally:
        trainer.close()
    assert [q.wm_ids for q in seqs] == [wm_target_ids(trainer.tokenizer, s.next_observation_text, cfg.paw) for s in batch.samples]


def test_a_target_strategy_that_replaces_targets_is_refused_in_trajectory_mode(tmp_path):
    with pytest.raises(ConfigError, match="paw.targets='shuffled' replaces the WM targets.*rollout.context=step"):
        Trainer(config(tmp_path, "paw.targets=shuffled", "rollout.context=trajectory"))
