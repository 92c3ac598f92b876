"""The ``alfworld`` env: ALFWorld's TextWorld engine on official or offline-generated games."""

from __future__ import annotations

import os
import random
from functools import cached_property
from pathlib import Path
from typing import Any, Sequence

from pawkit.own_random import OwnRandom
from pawkit.protocol import Env, Observation, StepResult, Task, UsageError, check_split
from pawkit_adapters.alfworld import games as gamefiles
from pawkit_adapters.alfworld import scenes

INVALID = "Nothing happens."
TASK_PREFIX = "Your task is to: "


class AlfworldEnv(Env):
    """ALFWorld (TextWorld PDDL + ALFWorld's demangler/expert wrappers), one game per reset.

    Data: ``data_dir`` (or ``$ALFWORLD_DATA``) in the official layout; without either, a
    default set generated offline on first use (see docs/alfworld.md).
    """

    name = "alfworld"
    max_return = 1.0
    max_steps = 50
    splits = gamefiles.SPLITS
    role = "You are an expert agent operating in the ALFRED Embodied Environment."

    def __init__(
        self,
        data_dir: str | None = None,
        task_types: Sequence[int] = tuple(scenes.TASK_TYPES),
        reward_scale: float = 1.0,
        max_steps: int = 50,
        default_games: int = 60,
        default_seed: int = 0,
    ):
        unknown = sorted(set(task_types) - set(scenes.TASK_TYPES))
        if unknown or not task_types:
            raise ValueError(f"task_types must be a non-empty subset of 1-6 ({scenes.TASK_TYPES}), got {list(task_types)}")
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        self.task_type_names = [scenes.TASK_TYPES[t] for t in sorted(set(task_types))]
        self.data_dir = data_dir
        self.reward_scale = float(reward_scale)
        self.max_return = self.reward_scale
        self.max_steps = max_steps
        self.default_games, self.default_seed = default_games, default_seed
        self.skipped: dict[str, list[tuple[str, str]]] = {}
        self._tasks: dict[str, list[Task]] = {}
        self._tw = None  # the TextWorld env, built on first reset (constructors stay cheap)
        self._state = None
        self._expert: OwnRandom | None = None  # the expert's own random stream, per game
        self._steps = 0
        self._done = True

    # ------------------------------------------------------------------ data
    @cached_property
    def root(self) -> Path:
        """The folder holding ``json_2.1.1/<split>``: the user's data, or the default generated set."""
        if self.data_dir:
            root = Path(self.data_dir).expanduser()
            if not (root / "json_2.1.1").is_dir():
                raise UsageError(  # a ValueError the CLI prints as one line (exit 2)
                    f"ALFWorld data folder {root} has no json_2.1.1/ (the official layout); "
                    "fix env.options.data_dir / ALFWORLD_DATA or unset it to use generated games"
                )
            return root
        # Importing alfworld sets ALFWORLD_DATA to ~/.cache/alfworld even when nothing was
        # downloaded, so the variable only counts when it holds the official layout.
        official = Path(os.environ.get("ALFWORLD_DATA", "/nonexistent")).expanduser()
        if (official / "json_2.1.1").is_dir():
            return official
        from pawkit_adapters.alfworld.generate import default_data

        return default_data(self.default_games, self.default_seed)

    def tasks(self, split: str = "train") -> Sequence[Task]:
        check_split(self, split)
        if split not in self._tasks:
            split_dir = self.root / "json_2.1.1" / split
            if not split_dir.is_dir():
                self._tasks[split], self.skipped[split] = [], []
                return []
            found = gamefiles.collect(split_dir, self.task_type_names, gamefiles.convert_cache(self.root) / split)
            self.skipped[split] = found.skipped
            self._tasks[split] = [
                Task(
                    id=f"{split}/{self._trial_id(game, split_dir)}",
                    split=split,
                    info={"gamefile": str(game), "task_type": gamefiles.task_type_of(game.parent)},
                )
                for game in found.games
            ]
        return self._tasks[split]

    @staticmethod
    def _trial_id(game: Path, split_dir: Path) -> str:
        try:
            return str(game.parent.relative_to(split_dir))
        except ValueError:  # a game file generated into the cache
            return "/".join(game.parent.parts[-2:])

    # ------------------------------------------------------------------ episodes
    def reset(self, task: Task | None = None, seed: int | None = None) -> Observation:
        if task is None or "gamefile" not in task.info:
            pool = self.tasks(task.split if task is not None else "train")
            if not pool:
                raise ValueError(f"no ALFWorld games in split {task.split if task else 'train'!r} of {self.root}")
            task = random.Random(seed).choice(list(pool))
        if self._tw is None:
            self._tw = gamefiles.make_tw_env()
        self._tw.load(task.info["gamefile"])
        self._expert = gamefiles.expert_random(task.info["gamefile"])
        with self._expert.active():
            self._state = self._tw.reset()
        self._steps, self._done = 0, False
        text = self._state["feedback"]
        head, _, tail = text.partition(TASK_PREFIX)
        description = tail.strip().rstrip(".") if tail else None
        return self._observation(text, description, task)

    def _observation(self, text: str, description: str | None = None, task: Task | None = None) -> Observation:
        admissible = [c for c in self._state["admissible_commands"] if c != "help"]
        info: dict[str, Any] = {}
        if task is not None:
            info = {"task_id": task.id, "task_type": task.info.get("task_type")}
        return Observation(text=text, admissible_actions=admissible, task=description, info=info)

    def step(self, command: str) -> StepResult:
        if self._state is None or self._done:
            raise RuntimeError("alfworld: call reset() before step() (the episode is over or never started)")
        with self._expert.active():  # the expert plans the next step inside TextWorld's step
            self._state, _, _ = self._tw.step(command.strip())
        self._steps += 1
        won = bool(self._state["won"])
        self._done = won or self._steps >= self.max_steps
        text = self._state["feedback"]
        info: dict[str, Any] = {"won": won}
        if text.strip() == INVALID:
            info["invalid_action"] = True
        return StepResult(
            observation=self._observation(text),
            reward=self.reward_scale if won else 0.0,
            done=self._done,
            success=won,
            info=info,
        )

    def expert_action(self) -> str:
        if self._state is None:
            raise RuntimeError("alfworld: reset() before asking the expert")
        return self._state["extra.expert_plan"][0]

    def close(self) -> None:
        if self._tw is not None:
            try:
                self._tw.close()
            except Exception:
                pass
            self._tw = None
