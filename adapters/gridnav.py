"""``gridnav``: the built-in learning-test game, small enough that a tiny model can learn it on CPU.

The agent stands on an N x N grid (default 3 x 3) and is told where the goal is *relative to
itself* ("The goal is 1 step north and 2 steps east of you."), so the right move is readable
from the current observation alone. Four moves, at most ``max_steps`` (6) turns, reward 1.0 for
reaching the goal. Deterministic and pure Python: a step costs microseconds, so a learning curve
measures the learner, not the environment.
"""

from __future__ import annotations

import random
from typing import Any, Callable, Sequence

from pawkit.hookspecs import hookimpl
from pawkit.protocol import Env, Observation, StepResult, Task, check_split

MOVES: dict[str, tuple[int, int]] = {"north": (-1, 0), "south": (1, 0), "east": (0, 1), "west": (0, -1)}
ACTIONS = list(MOVES)
SPLIT_SEED = 20240611  # fixed shuffle, so the train/test partition never changes between runs
TEST_FRACTION = 0.25

Cell = tuple[int, int]


def _steps(n: int, word: str) -> str:
    return f"{n} step{'s' if n != 1 else ''} {word}"


def relative_goal(position: Cell, goal: Cell) -> str:
    """The observation sentence, e.g. 'The goal is 1 step north and 2 steps east of you.'"""
    dr, dc = goal[0] - position[0], goal[1] - position[1]
    parts = []
    if dr:
        parts.append(_steps(abs(dr), "south" if dr > 0 else "north"))
    if dc:
        parts.append(_steps(abs(dc), "east" if dc > 0 else "west"))
    return f"The goal is {' and '.join(parts)} of you."


def all_pairs(size: int) -> list[tuple[Cell, Cell]]:
    cells = [(r, c) for r in range(size) for c in range(size)]
    return [(s, g) for s in cells for g in cells if s != g]


def split_pairs(size: int) -> dict[str, list[tuple[Cell, Cell]]]:
    """A fixed, disjoint train/test partition of every (start, goal) pair."""
    pairs = all_pairs(size)
    random.Random(SPLIT_SEED).shuffle(pairs)
    n_test = max(1, round(len(pairs) * TEST_FRACTION))
    return {"train": sorted(pairs[n_test:]), "test": sorted(pairs[:n_test])}


class GridNavEnv(Env):
    """Navigate to a goal given only its relative direction."""

    splits = ("train", "test")
    max_return = 1.0
    role = "You are an expert agent navigating a grid world."

    def __init__(self, size: int = 3, max_steps: int = 6, slack: int | None = None) -> None:
        """``slack``: if set, an episode's turn budget is min(max_steps, distance + slack), which
        makes random play rarer to succeed (slack=0: 13% on 3x3 instead of 34%)."""
        if size < 2:
            raise ValueError(f"gridnav size must be >= 2, not {size}")
        if max_steps < 1:
            raise ValueError(f"gridnav max_steps must be >= 1, not {max_steps}")
        if slack is not None and slack < 0:
            raise ValueError(f"gridnav slack must be >= 0 or None, not {slack}")
        self.slack = slack
        self._budget = max_steps
        self.name = "gridnav"
        self.size = size
        self.max_steps = max_steps
        self.task_text = f"reach the goal on a {size}x{size} grid by moving north, south, east or west"
        self._pairs = split_pairs(size)
        self._position: Cell = (0, 0)
        self._goal: Cell = (0, 0)
        self._turn = 0
        self._done = True

    def tasks(self, split: str = "train") -> Sequence[Task]:
        check_split(self, split)
        return [
            Task(
                id=f"{split}-{s[0]}{s[1]}-{g[0]}{g[1]}",
                split=split,
                seed=i,
                description=self.task_text,
                info={"start": list(s), "goal": list(g)},
            )
            for i, (s, g) in enumerate(self._pairs[split])
        ]

    def reset(self, task: Task | None = None, seed: int | None = None) -> Observation:
        if task is not None and "start" in task.info:
            start, goal = tuple(task.info["start"]), tuple(task.info["goal"])
        else:
            if task is not None:
                seed = task.seed
            train = self._pairs["train"]
            start, goal = train[(seed if seed is not None else random.randrange(len(train))) % len(train)]
        for cell in (start, goal):
            if not all(0 <= x < self.size for x in cell):
                raise ValueError(f"cell {cell} is off the {self.size}x{self.size} grid")
        if start == goal:
            raise ValueError("gridnav start and goal must differ")
        self._position, self._goal = (int(start[0]), int(start[1])), (int(goal[0]), int(goal[1]))
        self._turn = 0
        self._done = False
        distance = abs(goal[0] - start[0]) + abs(goal[1] - start[1])
        self._budget = self.max_steps if self.slack is None else min(self.max_steps, distance + self.slack)
        return self._observe(relative_goal(self._position, self._goal))

    def step(self, command: str) -> StepResult:
        if self._done:
            raise RuntimeError("gridnav: the episode is over; call reset() first")
        self._turn += 1
        move = MOVES.get(command.strip().lower())
        prefix = ""
        if move is None:
            prefix = f"'{command.strip()}' is not a move; choose north, south, east or west. "
        else:
            r, c = self._position[0] + move[0], self._position[1] + move[1]
            if 0 <= r < self.size and 0 <= c < self.size:
                self._position = (r, c)
            else:
                prefix = "You bumped into a wall and stayed in place. "
        info: dict[str, Any] = {"invalid_action": move is None, "turn": self._turn}
        if self._position == self._goal:
            self._done = True
            return StepResult(observation=self._observe("You reached the goal!"), reward=1.0, done=True, success=True, info=info)
        text = prefix + relative_goal(self._position, self._goal)
        if self._turn >= self._budget:
            self._done = True
            return StepResult(observation=self._observe(text + " You are out of turns."), done=True, info=info)
        return StepResult(observation=self._observe(text), info=info)

    def expert_action(self) -> str:
        """Greedy shortest path: close the north-south gap first, then east-west."""
        dr, dc = self._goal[0] - self._position[0], self._goal[1] - self._position[1]
        if dr:
            return "south" if dr > 0 else "north"
        if dc:
            return "east" if dc > 0 else "west"
        raise ValueError("gridnav: already at the goal")

    def _observe(self, text: str) -> Observation:
        return Observation(text=text, admissible_actions=list(ACTIONS), task=self.task_text)


def _make(**options: Any) -> GridNavEnv:
    return GridNavEnv(**options)


_make.__doc__ = "Built-in learning test: reach a goal given its relative direction (3x3, 6 turns)"


@hookimpl
def register_envs(register: Callable[..., None]) -> None:
    register("gridnav", _make, description=_make.__doc__)
