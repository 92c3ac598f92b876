"""pawkit plugin: the ``searchqa`` env (search-augmented QA, Search-R1's protocol).

Light at import: the env is a lazy ``"module:attr"`` string, so bm25s and the data load only
when an env is made; ``check`` only looks for the package and the option files.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Callable

from pawkit.hookspecs import hookimpl


def check(options: dict[str, Any] | None = None) -> str | None:
    """Why searchqa cannot run with these ``env.options`` (None: it can); cheap, no import."""
    if importlib.util.find_spec("bm25s") is None:
        return "needs bm25s (pip install pawkit[searchqa])"
    for key in ("corpus", "train", "test"):
        value = (options or {}).get(key)
        if value and not Path(str(value)).expanduser().is_file():
            return f"{key} not found: {value} (env.options.{key})"
    return None


@hookimpl
def register_envs(register: Callable[..., None]) -> None:
    register("searchqa", "pawkit_adapters.searchqa.env:SearchQAEnv", check=check,
             description="search-augmented QA (Search-R1 protocol, BM25, exact match): real data or a generated world")
