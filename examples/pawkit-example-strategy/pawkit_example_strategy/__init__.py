"""Example pawkit strategy plugin: two balancers and two selectors.

- ``squared_gap`` (balancer): a function of the group returns.
- ``step_decay`` (balancer): a class with ``Options`` (``paw.options.half_life``), a metric and a
  resumable state.
- ``middle_entropy`` (selector): a function of the action entropies.
- ``observation_change`` (selector): reads the observation texts, records a metric.

This module is what the entry point loads, for every ``pawkit`` command, so it stays light: it
registers ``"module:attr"`` strings and imports nothing heavy. ``strategies.py`` (and torch)
is imported only when a run first uses one of them.
"""

from pawkit.hookspecs import hookimpl

MODULE = "pawkit_example_strategy.strategies"


@hookimpl
def register_balancers(register):
    register(
        "squared_gap",
        f"{MODULE}:squared_gap",
        description="λ_g = λ0 · (1 − R̄_g / R_max)²: nearly-solved groups get almost no world-model loss.",
    )
    register(
        "step_decay",
        f"{MODULE}:StepDecay",
        description="Reward-adaptive λ_g halved every paw.options.half_life updates (stateful, resumable).",
    )


@hookimpl
def register_selectors(register):
    register(
        "middle_entropy",
        f"{MODULE}:middle_entropy",
        description="Keep the ⌈κ·N⌉ transitions closest to the median entropy (ties: lower index first).",
    )
    register(
        "observation_change",
        f"{MODULE}:observation_change",
        description="Keep the ⌈κ·N⌉ transitions whose next observation differs most from the current one.",
    )
