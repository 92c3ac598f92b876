"""Mistakes a new user (or a new adapter) makes get one line, not a traceback: found by a
first-time user trying the extension API from the docs alone."""

from __future__ import annotations

import sys

import pytest

from pawkit import plugins
from pawkit.cli import main
from pawkit.config import ConfigError, load_config
from pawkit.hookspecs import hookimpl
from pawkit_adapters.gridnav import GridNavEnv


class ResetReturnsStr(GridNavEnv):
    def reset(self, task=None, seed=None):
        return "just a string"


class StepRaises(GridNavEnv):
    def step(self, command):
        raise RuntimeError("the simulator died")


@hookimpl
def register_envs(register):
    register("ue/badreset", ResetReturnsStr)
    register("ue/notenv", dict)
    register("ue/raises", StepRaises)
    register("ue/weirdcheck", GridNavEnv, check=lambda: 42)


@pytest.fixture(scope="module", autouse=True)
def _plugin():
    name = plugins.register_plugin(sys.modules[__name__], name="user-errors")
    yield
    plugins.unregister_plugin(name)


def one_line(capsys, code, expected_code, start):
    err = capsys.readouterr().err.strip().splitlines()
    assert code == expected_code and len(err) == 1 and "Traceback" not in err[0], err
    assert err[0].startswith(start), err[0]
    return err[0]


def test_play_checks_the_env_contract_like_training(capsys):
    code = main(["play", "--env", "ue/badreset", "--policy", "random", "--episodes", "1"])
    one_line(capsys, code, 2, "error: env 'gridnav': reset returned str 'just a string', expected Observation")  # the env's own name


@pytest.mark.parametrize("command", [["play", "--policy", "random"], ["train", "--quiet", "trainer.steps=1"]])
def test_a_factory_that_returns_no_env_is_one_line(capsys, tmp_path, command):
    code = main([command[0], "--env", "ue/notenv", *command[1:], f"trainer.output_dir={tmp_path / 'r'}"]
                if command[0] == "train" else [command[0], "--env", "ue/notenv", *command[1:]])
    one_line(capsys, code, 2, "error: the factory of environment 'ue/notenv' returned dict, not a pawkit.protocol.Env")


def test_eval_where_every_episode_hits_an_env_error_says_so(capsys):
    code = main(["eval", "--env", "ue/raises", "--model", "tiny", "--episodes", "2", "--quiet"])
    line = one_line(capsys, code, 1, "error: all 2 evaluation episodes hit env errors; the first: ")
    assert "the simulator died" in line


def test_config_show_of_an_unknown_env_and_overrides_as_one_string(capsys):
    one_line(capsys, main(["config", "show", "--env", "nope/env"]), 2, "error: unknown env 'nope/env'")
    with pytest.raises(ConfigError, match=r"^overrides must be a list of key=value strings, e.g. \['trainer.steps=1'\], not one string$"):
        load_config("gridnav", overrides="trainer.steps=1")


def test_register_plugin_refuses_what_is_not_a_plugin():
    with pytest.raises(plugins.PluginError, match="has no @hookimpl function"):
        plugins.register_plugin(42, name="int")
    with pytest.raises(plugins.PluginError, match="name must be a non-empty str, got 3"):
        plugins.register_plugin(sys.modules[__name__], name=3)


def test_eval_of_a_missing_model_folder_says_so_before_asking_for_an_env(capsys):
    # "runs/x" could be a hub id (org/name); "./runs/x" is a path
    one_line(capsys, main(["eval", "--model", "./runs/does-not-exist"]), 2, "error: model path does not exist: ./runs/does-not-exist")


def test_a_check_that_returns_a_non_str_is_reported_as_such():
    assert plugins.registry("env").get("ue/weirdcheck").status() == "check returned int 42, not a str reason or None"


def test_an_unknown_name_mentions_a_plugin_that_failed_to_load():
    class Typo:
        @hookimpl
        def register_selector(self, register):  # misspelt: register_selectors
            register("mine", lambda ctx: None)

    with pytest.raises(plugins.PluginError):
        plugins.register_plugin(Typo(), name="typo-strategies")
    try:
        with pytest.raises(plugins.PluginError, match=r"^unknown selector 'mine'; available: .*; plugin 'typo-strategies' "
                                                      r"failed to load \(unknown hook 'register_selector'"):
            plugins.get("selector", "mine")
    finally:
        plugins.broken_plugins.pop("typo-strategies", None)
