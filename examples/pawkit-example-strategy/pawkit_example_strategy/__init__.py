"""Example pawkit strategy plugin: a squared reward-gap balancer and a middle-entropy selector.

This module is what the entry point loads, for every ``pawkit`` command, so it stays light: it
registers ``"module:attr"`` strings and imports nothing heavy. ``strategies.py`` (and torch)
is imported only when a run first uses one of the two.
"""

from pawkit.hookspecs import hookimpl


@hookimpl
def register_balancers(register):
    register(
        "squared_gap",
        "pawkit_example_strategy.strategies:squared_gap",
        description="λ_g = λ0 · (1 − R̄_g / R_max)²: nearly-solved groups get almost no world-model loss.",
    )


@hookimpl
def register_selectors(register):
    register(
        "middle_entropy",
        "pawkit_example_strategy.strategies:middle_entropy",
        description="Keep the ⌈κ·N⌉ transitions closest to the median entropy (ties: lower index first).",
    )
