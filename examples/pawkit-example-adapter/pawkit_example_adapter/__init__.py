"""A third-party pawkit plugin: one tiny environment, ``example/counter``.

Installed with ``pip install -e examples/pawkit-example-adapter``; pawkit finds it through the
``pawkit`` entry-point group declared in this package's pyproject.toml.
"""

from __future__ import annotations

from typing import Callable

from pawkit.hookspecs import hookimpl

from pawkit_example_adapter.counter import CounterEnv

__all__ = ["CounterEnv", "register_envs"]


@hookimpl
def register_envs(register: Callable[..., None]) -> None:
    # The factory is called with the user's options (**kwargs); a class works as a factory.
    register("example/counter", CounterEnv, description="Reach a target number with 'add 1' / 'add 2'")
