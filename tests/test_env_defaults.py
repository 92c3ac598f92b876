"""Env-owned default configs (``register(..., config=)``), their precedence, ``--explain``'s
sources, and ``pawkit eval`` / ``play`` reusing a run's saved config.yaml (pawkit issue #19)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pawkit import plugins
from pawkit.config import ConfigError, load_config, load_config_with_sources
from pawkit.hookspecs import hookimpl
from pawkit.plugins import PluginError

ROOT = Path(__file__).resolve().parents[1]
COUNTER_CONFIG = ROOT / "examples" / "pawkit-example-adapter" / "pawkit_example_adapter" / "config.yaml"
ENV_LABEL = f"env config {COUNTER_CONFIG}"


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "pawkit.cli", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd, env=env)


def test_example_counter_gets_the_config_its_plugin_ships():
    config, sources = load_config_with_sources("example/counter", overrides=["rollout.group_size=2"])
    assert (config.env.eval_split, config.rollout.output_format, config.rollout.constrained) == ("test", "plain", True)
    assert (config.rollout.tasks_per_step, config.rollout.group_size, config.rollout.max_new_tokens) == (4, 2, 8)
    assert config.env.options == {"max_target": 9}
    assert sources["env.eval_split"] == ENV_LABEL
    assert sources["rollout.group_size"] == "override"
    assert sources["env.name"] == "--env"
    assert "trainer.bf16" not in sources  # a key no layer set: the pawkit default


def test_local_configs_folder_is_over_the_env_config_and_config_files_replace_both(tmp_path, monkeypatch):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "example_counter.yaml").write_text("rollout:\n  group_size: 3\nenv:\n  options:\n    max_steps: 4\n")
    monkeypatch.chdir(tmp_path)
    config, sources = load_config_with_sources("example/counter")
    assert (config.rollout.group_size, config.rollout.tasks_per_step) == (3, 4)
    assert config.env.options == {"max_target": 9, "max_steps": 4}  # options merge key by key
    assert sources["rollout.group_size"] == "./configs configs/example_counter.yaml"
    assert sources["env.options"] == f"{ENV_LABEL} + ./configs configs/example_counter.yaml"
    (tmp_path / "mine.yaml").write_text("rollout:\n  tasks_per_step: 1\n")
    config, sources = load_config_with_sources("example/counter", ["mine.yaml"])
    assert (config.rollout.tasks_per_step, config.rollout.group_size, config.env.eval_split) == (1, 8, "train")
    assert sources["rollout.tasks_per_step"] == "--config mine.yaml"


def test_pawkits_own_configs_folder_is_not_counted_twice_from_the_repo_root(monkeypatch):
    monkeypatch.chdir(ROOT)
    _, sources = load_config_with_sources("gridnav")
    assert sources["env.eval_split"] == "env config configs/gridnav.yaml"


def test_config_show_explain_names_the_source_of_every_key():
    out = run("config", "show", "--env", "example/counter", "--explain", "seed=4")
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line for line in out.stdout.splitlines()}
    assert rows["seed"].split()[1:3] == ["4", "override"]
    assert rows["rollout.output_format"].split()[1:4] == ['"plain"', "env", "config"] and str(COUNTER_CONFIG) in rows["rollout.output_format"]
    assert rows["trainer.bf16"].split()[1:3] == ["false", "default"]


class _ShippedConfigs:
    """Envs registered with each kind of config= (a dict, a path relative to this file, a reference)."""

    @hookimpl
    def register_envs(self, register):
        from pawkit_example_adapter.counter import CounterEnv

        register("cfg/dict", CounterEnv, config={"rollout": {"group_size": 5}})
        register("cfg/relative", CounterEnv, config="../examples/pawkit-example-adapter/pawkit_example_adapter/config.yaml")
        register("cfg/reference", CounterEnv, config="tests.test_env_defaults:REFERENCED")
        register("cfg/missing", CounterEnv, config="no-such-config.yaml")


REFERENCED = {"env": {"eval_split": "test"}}


@pytest.fixture
def shipped():
    name = plugins.register_plugin(_ShippedConfigs(), name="shipped-configs")
    yield
    plugins.unregister_plugin(name)


def test_every_kind_of_shipped_config(shipped):
    assert load_config("cfg/dict").rollout.group_size == 5
    assert load_config_with_sources("cfg/dict")[1]["rollout.group_size"] == "env config (plugin 'shipped-configs')"
    assert load_config("cfg/relative").rollout.output_format == "plain"  # relative to tests/, this plugin's folder
    assert load_config("cfg/reference").env.eval_split == "test"
    with pytest.raises(ConfigError) as err:
        load_config("cfg/missing")
    assert str(err.value) == f"config of env 'cfg/missing' (plugin 'shipped-configs') not found: {ROOT / 'tests' / 'no-such-config.yaml'}"


class _StrategyWithConfig:
    @hookimpl
    def register_balancers(self, register):
        register("with-config", lambda group_mean_returns, max_return, cfg: group_mean_returns, config={})


def test_config_is_refused_for_anything_but_an_env():
    name = plugins.register_plugin(_StrategyWithConfig(), name="strategy-with-config")
    try:
        with pytest.raises(PluginError, match="^plugin 'strategy-with-config': config= is for envs, not for balancer 'with-config'$"):
            plugins.registry("balancer")
    finally:
        plugins.unregister_plugin(name)


def test_envs_checks_get_the_options_of_the_resolved_config(tmp_path):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "example_counter.yaml").write_text("env:\n  options:\n    max_target: 0\n")
    out = run("envs", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    status = {e["name"]: e["status"] for e in json.loads(out.stdout)}
    assert status["example/counter"] == "env.options.max_target must be an integer >= 1, not 0"
    assert status["gridnav"] == "ready"


def test_train_uses_the_env_config_and_eval_and_play_reuse_the_run_config(tmp_path):
    out = run("train", "--env", "example/counter", "model.name=tiny", "trainer.steps=2", f"trainer.output_dir={tmp_path}", "--quiet")
    assert out.returncode == 0, out.stderr[-2000:]
    saved = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert saved["env"] == {"name": "example/counter", "options": {"max_target": 9}, "train_split": "train", "eval_split": "test"}
    assert {k: saved["rollout"][k] for k in ("output_format", "constrained", "group_size", "tasks_per_step", "max_new_tokens")} == {
        "output_format": "plain", "constrained": True, "group_size": 4, "tasks_per_step": 4, "max_new_tokens": 8}
    assert (saved["trainer"]["lr"], saved["trainer"]["steps"]) == (0.003, 2)

    ev = run("eval", "--model", str(tmp_path), "--episodes", "3", "--json", "--quiet")
    assert ev.returncode == 0, ev.stderr[-2000:]
    result = json.loads(ev.stdout)
    assert (result["split"], result["episodes"], result["invalid_action_rate"]) == ("test", 3, 0.0)
    assert f"using the run config {tmp_path / 'config.yaml'} (env example/counter)" in ev.stderr

    step = tmp_path / "checkpoints" / "step-000002"
    play = run("play", "--config", str(step / "model"), "--policy", "expert", "--episodes", "2", "--split", "test", "--json")
    assert play.returncode == 0, play.stderr[-2000:]
    assert json.loads(play.stdout)["env"] == "example/counter"
    assert f"using the run config {tmp_path / 'config.yaml'}" in play.stderr

    other = run("eval", "--model", str(step), "--env", "gridnav", "--episodes", "1", "--json", "--quiet")
    assert other.returncode == 0, other.stderr[-2000:]
    assert json.loads(other.stdout)["split"] == "test" and "using the run config" not in other.stderr  # gridnav's own config


def test_eval_of_a_model_outside_a_run_needs_an_env():
    out = run("eval", "--model", "tiny", "--episodes", "1")
    assert out.returncode == 2
    assert out.stderr.strip() == "error: pawkit eval needs --env ENV, or a run (its config.yaml names the env)"
