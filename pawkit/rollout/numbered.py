"""Numbered actions: the prompt lists the admissible actions as 1..N and the reply is a number.

Why: a model trained from scratch and constrained to long action strings (WebShop's
``click[<product id>]``, ``click[back to search]``, ...) samples byte by byte through a trie
whose branching is far from uniform over the actions, and can start with almost no reward.
With short labels its first policy is close to a uniform choice among the actions.
"""

from __future__ import annotations

from typing import Sequence

from pawkit.protocol import Action


def choices(actions: Sequence[str]) -> list[str]:
    """The actions in listing order, duplicates removed (a number names exactly one action)."""
    return list(dict.fromkeys(actions))


def labels(actions: Sequence[str]) -> list[str]:
    return [str(k) for k in range(1, len(choices(actions)) + 1)]


def listing(actions: Sequence[str]) -> str:
    return "\n".join(f"{k}: {action}" for k, action in enumerate(choices(actions), start=1))


def resolve(action: Action, actions: Sequence[str]) -> Action:
    """A parsed reply holding a number → the action it names; any other reply is invalid."""
    options = choices(actions)
    if not action.valid or not options:
        return action
    number = action.command.strip()
    if number.isdigit() and 1 <= int(number) <= len(options):
        return action.model_copy(update={"command": options[int(number) - 1]})
    return action.model_copy(update={"valid": False, "parse_error": f"not an action number from 1 to {len(options)}"})
