"""The typed language every part of pawkit speaks, and the environment adapter interface.

Adapters import only this module (and ``pawkit.hookspecs``), so an environment never depends
on the trainer. Every type round-trips through JSON exactly: trajectory dumps are JSONL of
these models.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from typing import Any, Sequence

from pydantic import BaseModel, ConfigDict, Field


class UsageError(ValueError):
    """Input a user can fix (bad option, missing data, unknown name): the CLI prints the
    message as one line and exits 2, without a traceback. Adapters raise it too."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Observation(_Model):
    """What the agent sees: the env's own text, plus what a prompt needs to show it.

    Conventions for ``info`` of the observation ``reset`` returns: ``turn_limit`` (int) lowers
    this episode's turn limit below the run's; ``min_steps`` (int) is the fewest turns the task
    needs (e.g. its gold path) — a run whose limit is below it counts the episode in
    ``rollout/unsolvable_episodes`` and warns, since no policy could succeed on it.
    """

    text: str
    admissible_actions: list[str] | None = None
    task: str | None = None
    info: dict[str, Any] = Field(default_factory=dict)


class Action(_Model):
    """A model reply and what the parser made of it; invalid replies are still executed."""

    raw: str
    command: str
    valid: bool = True
    parse_error: str | None = None


class StepResult(_Model):
    """What ``Env.step`` returns. ``success`` is only meaningful once ``done``.

    Convention: ``info["invalid_action"] = True`` when the env rejected the command (the
    state did not change); play/eval count these as invalid actions.
    """

    observation: Observation
    reward: float = 0.0
    done: bool = False
    success: bool = False
    info: dict[str, Any] = Field(default_factory=dict)


class Transition(_Model):
    """One (x_t, a_t, o_{t+1}) step: the unit of both the RL and the world-model losses."""

    observation: Observation
    action: Action
    next_observation: Observation | None = None
    reward: float = 0.0
    done: bool = False
    info: dict[str, Any] = Field(default_factory=dict)


class Task(_Model):
    """A reproducible starting point: resetting twice with the same task gives the same state."""

    id: str
    split: str = "train"
    seed: int | None = None
    description: str | None = None
    info: dict[str, Any] = Field(default_factory=dict)


class Episode(_Model):
    env: str
    task_id: str
    group_id: str
    transitions: list[Transition] = Field(default_factory=list)
    return_: float = Field(0.0, alias="return")
    success: bool = False
    end_reason: str = "done"  # done | max_steps | env_error | ...

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)

    @classmethod
    def from_json(cls, text: str) -> "Episode":
        return cls.model_validate_json(text)


class Env(ABC):
    """A multi-turn text environment, in the spirit of skyrl-gym's ``core.py``.

    Subclasses implement ``reset`` and ``step``; everything else has a sensible default.
    The prompt pieces (``role``, ``format_*``) belong to the adapter because only it knows
    how its pages and action lists read best; the core supplies a generic default.
    """

    name: str = "env"
    max_return: float = 1.0
    max_steps: int = 50  # default turn limit of an episode; the rollout config may lower it
    splits: tuple[str, ...] = ("train",)
    role: str = "You are an expert agent operating in a text environment."

    @abstractmethod
    def reset(self, task: Task | None = None, seed: int | None = None) -> Observation:
        """Start an episode on ``task`` (or a task drawn with ``seed``)."""

    @abstractmethod
    def step(self, command: str) -> StepResult:
        """Execute one command; an invalid command is the env's business, never an exception."""

    def close(self) -> None:
        """Release processes or files; safe to call twice."""

    def tasks(self, split: str = "train") -> Sequence[Task]:
        """The tasks of a split; envs with seeded procedural tasks may list a window of seeds."""
        check_split(self, split)
        return [Task(id=f"seed-{i}", split=split, seed=i) for i in range(100)]

    @property
    def has_expert(self) -> bool:
        return type(self).expert_action is not Env.expert_action

    def expert_action(self) -> str:
        """The oracle's next command in the current state (for demos and tests)."""
        raise NotImplementedError(f"{self.name} has no expert policy")

    def random_action(self, observation: Observation, rng: random.Random) -> str:
        """A uniformly random command: the baseline ``pawkit play --policy random`` uses.

        Envs without an admissible-action list override this with something sensible.
        """
        if not observation.admissible_actions:
            raise NotImplementedError(f"{self.name} lists no admissible actions to sample from")
        return rng.choice(observation.admissible_actions)

    # --- prompt pieces -------------------------------------------------------------------
    def format_observation(self, observation: Observation) -> str:
        return observation.text

    def format_admissible(self, actions: Sequence[str]) -> str:
        return "\n ".join(f"'{a}'" for a in actions)

    def anchor(self, observation: Observation) -> str:
        """The state key GiGPO groups steps by: the observation without prompt decoration."""
        return observation.text

    def __enter__(self) -> "Env":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_split(env: Env, split: str) -> None:
    """A ``UsageError`` naming the env's splits unless ``split`` is one of them.

    The one copy of the check: ``Env.tasks``, ``pawkit play`` and evaluation call it, and an
    adapter's own ``tasks`` should too (before it touches any data).
    """
    if split not in env.splits:
        raise UsageError(f"unknown split {split!r} for {env.name}; choose from {', '.join(env.splits)}")
