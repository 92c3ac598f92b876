"""The third-party example package is discovered through the `pawkit` entry-point group."""

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

from pawkit import plugins

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "pawkit-example-adapter"


@pytest.fixture(scope="session")
def example_installed() -> None:
    """CI installs the example; a dev checkout gets it installed once, editable, without deps."""
    try:
        importlib.metadata.distribution("pawkit-example-adapter")
    except importlib.metadata.PackageNotFoundError:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "-e", str(EXAMPLE)],
            check=True,
        )
        importlib.invalidate_caches()


def test_entry_point_declared(example_installed):
    eps = [ep for ep in importlib.metadata.entry_points(group="pawkit") if ep.value == "pawkit_example_adapter"]
    assert [(ep.name, ep.value) for ep in eps] == [("example", "pawkit_example_adapter")]


def test_registry_lists_example_counter(example_installed):
    entry = plugins.registry("env").get("example/counter")
    assert (entry.plugin, entry.status(), entry.description) == ("example", "ready", "Reach a target number with 'add 1' / 'add 2'")


@pytest.mark.parametrize("split", ["train", "test"])
def test_expert_succeeds_on_every_task(example_installed, split):
    env = plugins.get("env", "example/counter")()
    for task in env.tasks(split):
        obs = env.reset(task=task)
        assert obs.admissible_actions == ["add 1", "add 2"]
        steps = 0
        while True:
            r = env.step(env.expert_action())
            steps += 1
            if r.done:
                break
        assert (r.success, r.reward, steps) == (True, 1.0, (task.info["target"] + 1) // 2)


def test_counter_overshoot_and_invalid(example_installed):
    env = plugins.get("env", "example/counter")()
    env.reset(task=env.tasks("train")[0])  # target 1
    bad = env.step("add 3")
    assert (bad.done, bad.info["invalid_action"], bad.observation.text) == (False, True, "Unknown command 'add 3'. The counter is at 0.")
    over = env.step("add 2")
    assert (over.done, over.success, over.observation.text) == (True, False, "You overshot the target. The counter is at 2.")
    assert env.format_observation(over.observation) == "You overshot the target. The counter is at 2. (target 1)"


def test_the_example_ships_its_config_as_package_data(example_installed):
    import tomllib

    entry = plugins.registry("env").get("example/counter")
    label, data = entry.defaults()
    shipped = EXAMPLE / "pawkit_example_adapter" / "config.yaml"
    assert label == f"env config {shipped}"
    assert (data["env"]["eval_split"], data["rollout"]["output_format"], data["rollout"]["constrained"]) == ("test", "plain", True)
    pyproject = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())
    assert pyproject["tool"]["setuptools"]["package-data"] == {"pawkit_example_adapter": ["config.yaml"]}
    assert entry.status({"max_target": 0}) == "env.options.max_target must be an integer >= 1, not 0"
