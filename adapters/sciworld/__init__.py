"""pawkit plugin: ``sciworld`` (all 30 ScienceWorld tasks, cycled) and ``sciworld/<task>``.

Nothing here imports the ``scienceworld`` package or starts Java, so ``pawkit envs`` stays
fast and shows what is missing (the package, or a Java runtime).
"""

from __future__ import annotations

import importlib.util
from typing import Any, Callable

from pawkit.hookspecs import hookimpl
from pawkit_adapters.sciworld.engine import INSTALL_HINT, java_missing
from pawkit_adapters.sciworld.tasks import task_names


def check() -> str | None:
    if importlib.util.find_spec("scienceworld") is None:
        return INSTALL_HINT
    if java_missing():
        return "needs java"
    return None


def make_env(task: str | None = None, **options: Any):
    """ScienceWorld science tasks on the real simulator (JVM started at first reset)."""
    if importlib.util.find_spec("scienceworld") is None:
        raise RuntimeError(f"sciworld {INSTALL_HINT}")
    from pawkit_adapters.sciworld.env import SciWorldEnv

    return SciWorldEnv(task=task, **options)


def _task_factory(task: str) -> Callable[..., Any]:
    def factory(**options: Any):
        if "task" in options:
            raise ValueError(f"sciworld/{task} fixes the task; use env 'sciworld' to choose one with task=...")
        return make_env(task=task, **options)

    return factory


@hookimpl
def register_envs(register: Callable[..., None]) -> None:
    register(
        "sciworld",
        make_env,
        description="ScienceWorld: 30 elementary-science tasks on the real simulator, cycled (needs java)",
        check=check,
    )
    for task in task_names():
        register(f"sciworld/{task}", _task_factory(task), description=f"ScienceWorld task {task}", check=check)
