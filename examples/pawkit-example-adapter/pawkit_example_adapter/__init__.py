"""A third-party pawkit plugin: one tiny environment, ``example/counter``.

Installed with ``pip install -e examples/pawkit-example-adapter``; pawkit finds it through the
``pawkit`` entry-point group declared in this package's pyproject.toml.
"""

from __future__ import annotations

from typing import Callable

from pawkit.hookspecs import hookimpl

from pawkit_example_adapter.counter import CounterEnv

__all__ = ["CounterEnv", "check", "register_envs"]


@hookimpl
def register_envs(register: Callable[..., None]) -> None:
    # The factory is called with the user's options (**kwargs); a class works as a factory.
    # config: the env's default run config, a YAML file next to this module (shipped as package
    # data, see pyproject.toml); a dict works too. `pawkit train --env example/counter` uses it.
    register(
        "example/counter",
        CounterEnv,
        description="Reach a target number with 'add 1' / 'add 2'",
        check=check,
        config="config.yaml",
    )


def check(options: dict) -> str | None:
    """Why example/counter cannot run with these ``env.options`` (None: it can). It runs for
    every ``pawkit envs``, so it only looks at the options; declaring ``options`` is opt-in."""
    max_target = options.get("max_target", 9)
    if not isinstance(max_target, int) or max_target < 1:
        return f"env.options.max_target must be an integer >= 1, not {max_target!r}"
    return None
