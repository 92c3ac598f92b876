"""Rollout engines (``rollout.engine``, ``register_rollout_engines``): the HF engine is the default,
a third-party engine samples every rollout and receives the weights after every update, and a
bad engine name or object is one line before the model loads."""

from __future__ import annotations

import sys
import time

import pytest

from pawkit import cli, plugins
from pawkit.config import load_config
from pawkit.hookspecs import hookimpl
from pawkit.rollout.generate import Generator, TurnLost
from pawkit.train.trainer import Trainer


class CountingEngine(Generator):
    """Today's HF sampling, counting its calls and the weight syncs it receives."""

    instances: list["CountingEngine"] = []

    def __init__(self, model, tokenizer, cfg):
        super().__init__(model, tokenizer, cfg)
        self.samples = self.syncs = self.closed = 0
        self.synced_versions: list[float] = []
        CountingEngine.instances.append(self)

    def sample(self, prompts, tries, temperature):
        self.samples += 1
        return super().sample(prompts, tries, temperature)

    def sync(self, model):
        self.syncs += 1
        self.synced_versions.append(float(sum(p.detach().sum() for p in model.parameters() if p.requires_grad)))

    def close(self):
        self.closed += 1


class LosesFirstTurn(Generator):
    """Today's HF sampling, except that the first call raises ``TurnLost``, as the vLLM engine
    does after restarting a server that died mid-turn."""

    def __init__(self, model, tokenizer, cfg):
        super().__init__(model, tokenizer, cfg)
        self.calls = 0

    def sample(self, prompts, tries, temperature):
        self.calls += 1
        if self.calls == 1:
            raise TurnLost("the vLLM server died during this turn and was restarted")
        return super().sample(prompts, tries, temperature)


class NoSample:
    def __init__(self, model, tokenizer, cfg):
        self.tokenizer, self.cfg = tokenizer, cfg


@hookimpl
def register_rollout_engines(register):
    register("test/counting", CountingEngine)
    register("test/nosample", NoSample)
    register("test/losesturn", LosesFirstTurn)


@pytest.fixture(scope="module", autouse=True)
def _plugin():
    name = plugins.register_plugin(sys.modules[__name__], name="test-engines")
    yield
    plugins.unregister_plugin(name)


def config(tmp_path, *extra):
    return load_config("gridnav", overrides=[f"trainer.output_dir={tmp_path}", "rollout.tasks_per_step=2", "rollout.group_size=4",
                                             "trainer.eval_every=0", "trainer.eval_before_after=false", *extra])


def test_hf_is_the_default_engine(tmp_path):
    trainer = Trainer(config(tmp_path))
    try:
        assert trainer.cfg.rollout.engine == "hf" and type(trainer.generator) is Generator
    finally:
        trainer.close()


def test_a_plugin_engine_samples_every_turn_and_gets_the_weights_after_each_update(tmp_path):
    CountingEngine.instances.clear()
    trainer = Trainer(config(tmp_path, "rollout.engine=test/counting"))
    try:
        engine = trainer.generator
        assert isinstance(engine, CountingEngine)
        turns = 0
        for _ in range(2):
            trainer.train_step()
            turns += max(len(e.transitions) for e in trainer.last_batch.episodes)  # one sample call per turn (8 slots ≤ 64)
        assert engine.samples == turns and engine.syncs == 2  # one sync per step whose update ran
        assert engine.synced_versions[0] != engine.synced_versions[1]  # it got the weights of each update
    finally:
        trainer.close()
    assert engine.closed == 1


def test_a_lost_turn_drops_its_episodes_without_stopping_the_run(tmp_path):
    """All 8 episodes lost on step 1's first turn: counted as env errors and engine-lost ones,
    logged, not held against trainer.max_env_error_rate (0.5); step 2 trains as usual."""
    trainer = Trainer(config(tmp_path, "rollout.engine=test/losesturn"))
    try:
        first = trainer.train_step()
        assert first["rollout/env_errors"] == 8.0 and first["rollout/engine_lost_episodes"] == 8.0
        assert trainer.last_batch.samples == []
        second = trainer.train_step()
        assert second["rollout/env_errors"] == 0.0 and second["rollout/engine_lost_episodes"] == 0.0
        assert second["rollout/episodes"] == 8.0 and len(trainer.last_batch.samples) > 0
    finally:
        trainer.close()
    log = (tmp_path / "env_errors.log").read_text().splitlines()
    assert len([line for line in log if line.startswith("step 1: ")]) == 8
    assert all("TurnLost: the vLLM server died during this turn" in line for line in log if line.startswith("step 1: "))


def test_an_unknown_engine_is_one_line_before_the_model_loads(tmp_path, capsys):
    t0 = time.perf_counter()
    code = cli.main(["train", "--env", "gridnav", "rollout.engine=vlm", f"trainer.output_dir={tmp_path}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0] == ("error: rollout.engine: unknown rollout_engine 'vlm' (did you mean 'vllm'?); "
                      "available: hf, test/counting, test/losesturn, test/nosample, vllm")
    assert time.perf_counter() - t0 < 30


def test_an_engine_without_sample_is_one_line(tmp_path, capsys):
    code = cli.main(["train", "--env", "gridnav", "rollout.engine=test/nosample", f"trainer.output_dir={tmp_path}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "rollout engine 'test/nosample' (plugin 'test-engines') has no sample, encode, template_parts" in err[0]
