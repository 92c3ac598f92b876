"""Building a registered env from the user's ``env.options``: every way that can go wrong is
one ``UsageError`` line naming the env (an unknown option, a value the env rejects, a factory
that does not return an ``Env``), raised before any model loads."""

from __future__ import annotations

import contextlib
import inspect
from typing import Any

from pawkit import plugins
from pawkit.protocol import Env, UsageError


def build_env(name: str, options: dict[str, Any]) -> Env:
    """The env ``name`` built with ``options``; an option it does not take, or a ValueError/TypeError
    while building (``max_steps=0``, ``size=abc``), is one UsageError line (``--debug``: traceback)."""
    factory = plugins.get("env", name)
    with contextlib.suppress(ValueError):  # ValueError: no signature to check (a builtin)
        try:
            inspect.signature(factory).bind(**options)
        except TypeError as exc:
            raise UsageError(f"env.options: bad options for environment {name!r}: {exc}") from None
    try:
        env = factory(**options)
    except (TypeError, ValueError) as exc:  # raised while taking the user's options in
        given = ", ".join(f"{k}={v!r}" for k, v in options.items()) or "none"
        raise UsageError(f"env.options: environment {name!r} rejected its options ({given}): {type(exc).__name__}: {exc}") from exc
    if not isinstance(env, Env):
        raise UsageError(f"the factory of environment {name!r} returned {type(env).__name__}, not a pawkit.protocol.Env")
    return env
