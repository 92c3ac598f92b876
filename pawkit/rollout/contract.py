"""The ``Env`` contract pawkit checks on every ``reset`` / ``step`` result (training, evaluation,
``pawkit play`` and ``pawkit preview``): the right type, a finite reward, observation text
without lone surrogates. No torch: ``pawkit play`` imports it.
"""

from __future__ import annotations

import math
import re

from pawkit.protocol import Env, Observation, StepResult, UsageError

_SURROGATE = re.compile("[\ud800-\udfff]")


class EnvContractError(RuntimeError):
    """An env broke the ``Env`` contract: wrong return type, non-finite reward, lone surrogate."""


def check_result(env: Env, method: str, value):
    """``value`` when it keeps the contract of ``Env.<method>``, else an ``EnvContractError``
    (returned, not raised) naming the env, the method and what was wrong."""
    if isinstance(value, BaseException):
        return value
    expected = Observation if method == "reset" else StepResult
    fault = None
    if not isinstance(value, expected):
        hint = " (a gym-style tuple?)" if isinstance(value, tuple) else ""
        fault = f"returned {type(value).__name__} {repr(value)[:60]}{hint}, expected {expected.__name__}"
    elif isinstance(value, StepResult) and not math.isfinite(value.reward):
        fault = f"returned a non-finite reward {value.reward}"
    else:
        obs = value if isinstance(value, Observation) else value.observation
        for where, text in [("text", obs.text), ("task", obs.task or ""), *(("admissible_actions", a) for a in obs.admissible_actions or ())]:
            if not isinstance(text, str) or (found := _SURROGATE.search(text)):
                fault = f"returned a non-str observation.{where}" if not isinstance(text, str) else (
                    f"returned a lone surrogate {found.group()!r} in observation.{where} at character {found.start()} (not valid Unicode)")
                break
    return value if fault is None else EnvContractError(f"env {env.name!r}: {method} {fault}")


def require_contract(env: Env, method: str, value):
    """``value`` if it keeps the contract (``check_result``), else one UsageError line naming the
    env and the method: ``pawkit play`` and ``pawkit preview`` stop at the first broken result."""
    checked = check_result(env, method, value)
    if isinstance(checked, BaseException):
        raise UsageError(str(checked))
    return checked
