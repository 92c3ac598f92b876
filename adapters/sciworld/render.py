"""Compact prompt text for ScienceWorld's huge action space.

A state has hundreds to thousands of valid action strings (every template x every visible
object). A prompt shows the ~25 action templates once (in the role) plus the objects in view;
the full list stays on the observation for constrained decoding.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Sequence

# The simulator's action templates (``get_possible_actions``); "OBJ" is an object slot.
TEMPLATES = (
    "activate OBJ", "close OBJ", "connect OBJ to OBJ", "deactivate OBJ", "disconnect OBJ",
    "dunk OBJ in OBJ", "eat OBJ", "flush OBJ", "focus on OBJ", "go OBJ", "inventory",
    "look around", "look at OBJ", "look in OBJ", "mix OBJ", "move OBJ to OBJ", "open OBJ",
    "pick up OBJ", "pour OBJ in OBJ", "put down OBJ", "read OBJ", "reset task", "task",
    "teleport OBJ", "use OBJ on OBJ", "wait", "wait1",
)
ELECTRICAL = ("connect OBJ to OBJ", "disconnect OBJ")  # only where electrical actions are allowed


def role(templates: Sequence[str]) -> str:
    return (
        "You are an expert agent operating in ScienceWorld, a text-based elementary-science simulator. "
        "Commands follow these templates, where OBJ is the name of an object you can see: "
        + ", ".join(templates)
        + ". 'focus on OBJ' declares the object the task is about: focusing on a wrong one fails the task."
    )


@lru_cache(maxsize=1)
def _patterns() -> list[re.Pattern[str]]:
    """Longest templates first, so 'look around' never reads as 'look at OBJ'."""
    ordered = sorted(TEMPLATES, key=lambda t: (-len(t.replace("OBJ", "")), t))
    return [re.compile("^" + re.escape(t).replace("OBJ", "(.+?)") + "$") for t in ordered]


def split_action(action: str) -> tuple[str, tuple[str, ...]] | None:
    """('move OBJ to OBJ', ('apple', 'table')) for 'move apple to table'; None for a non-template string."""
    for pattern in _patterns():
        match = pattern.match(action)
        if match:
            template = pattern.pattern[1:-1].replace("(.+?)", "OBJ").replace("\\ ", " ")
            return template, match.groups()
    return None


def compact(actions: Sequence[str]) -> str:
    """The valid actions as 'templates in use' plus the objects they name (a few hundred characters).

    Objects are read from one-slot commands only: in 'move door to hallway to kitchen' the
    split is ambiguous, and every object in view has a one-slot command ('look at OBJ').
    """
    templates: list[str] = []
    objects: list[str] = []
    other: list[str] = []
    for action in actions:
        parts = split_action(action)
        if parts is None:
            other.append(action)
            continue
        if parts[0] not in templates:
            templates.append(parts[0])
        if len(parts[1]) == 1 and parts[1][0] not in objects:  # two-slot splits are ambiguous ("door to x")
            objects.append(parts[1][0])
    text = f"{len(actions)} valid commands built from the templates {', '.join(sorted(templates))}"
    if objects:
        text += f", with OBJ one of: {', '.join(sorted(objects))}"
    if other:
        text += f"; also: {', '.join(other)}"
    return text


def objects_line(objects: Sequence[str]) -> str:
    return "Objects you can refer to: " + ", ".join(objects) + "."
