"""The ScienceWorld env on the real simulator (the Scala jar in the ``scienceworld`` wheel).

Steps go to the raw server, not ``ScienceWorldEnv.step``: the package's step rebuilds the
list of every valid action (hundreds to thousands of strings) after each move, which costs
more than the move itself. Here that list is computed only when asked for
(``valid_actions()``, or ``valid_actions=True`` for constrained decoding).
"""

from __future__ import annotations

import math
import random
import warnings
from typing import Any, Sequence

from pawkit.protocol import Env, Observation, StepResult, Task, check_split
from pawkit_adapters.sciworld.engine import INSTALL_HINT, Engine
from pawkit_adapters.sciworld.render import ELECTRICAL, TEMPLATES, compact, objects_line, role
from pawkit_adapters.sciworld.tasks import SPLITS, GoldSteps, is_electrical, task_names, variation_splits

SIMPLIFICATIONS = ("easy", "teleportAction", "selfWateringFlowerPots", "openContainers", "openDoors", "noElectricalAction")
REJECTIONS = ("No known action matches that input.", "Unknown action.")
AMBIGUOUS = "Ambiguous request"
DEFAULT_MAX_STEPS = 300  # longest gold path seen: 227 (inclined-plane-friction-unnamed-surfaces, train variation 60)


class TurnLimitWarning(UserWarning):
    """A task needs more turns (its gold path) than the episode's turn limit allows."""


def normalise(command: str) -> str:
    return " ".join(command.strip().lower().split())


class SciWorldEnv(Env):
    """One ScienceWorld task (or all 30, cycled) with its train/dev/test variations.

    Reward: the score delta / 100, with a failed task (score -100) counted as score 0, so an
    episode's return is its final score / 100 in [0, 1]; success = the task completed.

    Turn limit: ``max_steps`` for every episode, or with ``gold_multiple`` each episode's own,
    ``min(max_steps, ceil(gold_multiple x gold path length))``: variations of one task need from
    30 to 174 commands (boil), so no single small number fits. Every observation carries
    ``info["turn_limit"]`` and, when the gold path's length is known, ``info["min_steps"]``; a
    reset whose known minimum exceeds the limit warns (``TurnLimitWarning``).
    """

    splits = SPLITS
    max_return = 1.0

    def __init__(
        self,
        task: str | None = None,
        simplification: str = "easy",
        max_steps: int = DEFAULT_MAX_STEPS,
        valid_actions: bool = False,
        objects: bool = True,
        gold_path: bool = False,
        gold_multiple: float | None = None,
    ) -> None:
        """``valid_actions``: put the full valid-action list on every observation (constrained
        decoding; ~50-300 ms a step). ``objects``: list the objects in view (~3 ms a step).
        ``gold_path``: generate the expert's path at every reset instead of on first use.
        ``gold_multiple``: end each episode after this multiple (>= 1) of its gold path's length
        (at most ``max_steps``); the length is measured at a variation's first reset (0.2-20 s)
        and cached on disk."""
        names = task_names()
        if not names:
            raise RuntimeError(f"sciworld {INSTALL_HINT}")
        if task is not None and task not in names:
            raise ValueError(f"unknown ScienceWorld task {task!r}; choose from {', '.join(names)}")
        for part in filter(None, simplification.split(",")):
            if part not in SIMPLIFICATIONS:
                raise ValueError(f"unknown simplification {part!r}; use a comma list of {', '.join(SIMPLIFICATIONS)}")
        if max_steps < 1:
            raise ValueError(f"sciworld max_steps must be >= 1, not {max_steps}")
        if gold_multiple is not None and not gold_multiple >= 1:
            raise ValueError(f"sciworld gold_multiple must be >= 1 (a limit below the gold path makes tasks unsolvable), not {gold_multiple}")
        self.task_names = [task] if task else names
        self.name = f"sciworld/{task}" if task else "sciworld"
        self.simplification = simplification
        self.max_steps = max_steps
        self.with_valid_actions = valid_actions
        self.with_objects = objects
        self.eager_gold = gold_path
        self.gold_multiple = gold_multiple
        self.gold_steps = GoldSteps()
        self.role = role(self._templates())
        self._engine: Engine | None = None
        self._splits: dict[str, dict[str, list[int]]] | None = None
        self._cursor = 0
        self._done = True
        self._task_name = ""
        self._variation = 0
        self._commands: list[str] = []
        self._gold: list[str] | None = None
        self._choices: list[str] = []
        self._turn = 0
        self._limit = max_steps  # this episode's turn limit
        self._min_steps: int | None = None  # this episode's gold path length, when known
        self._score = 0  # clipped at 0: the return never goes negative
        self._text = ""
        self._task_text = ""

    # --- engine and tasks -----------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        """The JVM, started on first use (not in the constructor: prompt-only instances need none)."""
        if self._engine is None or not self._engine.alive:
            self._engine = Engine()
        return self._engine

    @property
    def jvm_start_seconds(self) -> float | None:
        return self._engine.start_seconds if self._engine else None

    def _templates(self) -> list[str]:
        parts = self.simplification.split(",")
        electrical = any(is_electrical(t) for t in self.task_names)
        dropped = set()
        if not electrical and ("easy" in parts or "noElectricalAction" in parts):
            dropped |= set(ELECTRICAL)
        if "easy" not in parts and "teleportAction" not in parts:
            dropped.add("teleport OBJ")
        return [t for t in TEMPLATES if t not in dropped]

    def _simplification_for(self, task: str) -> str:
        """The package refuses noElectricalAction for electrical tasks; drop it for those only."""
        if not is_electrical(task):
            return self.simplification
        return ",".join(p for p in self.simplification.split(",") if p != "noElectricalAction")

    def tasks(self, split: str = "train") -> Sequence[Task]:
        """(task, variation) pairs interleaved task by task, so consecutive seeds cycle over tasks."""
        check_split(self, split)
        if self._splits is None:
            self._splits = variation_splits(lambda: self.engine)
        lists = [(t, self._splits[t][split]) for t in self.task_names]
        out: list[Task] = []
        for i in range(max(len(v) for _, v in lists)):
            for name, variations in lists:
                if i < len(variations):
                    out.append(Task(id=f"{name}-{variations[i]}", split=split, seed=len(out),
                                    info={"task_name": name, "variation": variations[i]}))
        return out

    # --- episode --------------------------------------------------------------------------
    def reset(self, task: Task | None = None, seed: int | None = None) -> Observation:
        if task is not None and "task_name" in task.info:
            name, variation = str(task.info["task_name"]), int(task.info["variation"])
            if name not in self.task_names:
                raise ValueError(f"task {name!r} is not one of {self.name}'s tasks")
        else:
            if task is not None:
                seed = task.seed
            train = self.tasks("train")
            if seed is None:
                seed, self._cursor = self._cursor, self._cursor + 1
            chosen = train[seed % len(train)]
            name, variation = chosen.info["task_name"], chosen.info["variation"]
        self._task_name, self._variation = name, variation
        key = self._gold_key()
        self._min_steps = self.gold_steps.get(key)
        self._load(gold=self.eager_gold or (self.gold_multiple is not None and self._min_steps is None))
        if self._gold is not None:
            self._record_gold()
        self._limit = self.max_steps
        if self.gold_multiple is not None and self._min_steps is not None:
            self._limit = min(self.max_steps, math.ceil(self.gold_multiple * self._min_steps))
        self._check_limit()
        return self._observe(self._text)

    def _gold_key(self) -> str:
        return GoldSteps.key(self._simplification_for(self._task_name), self._task_name, self._variation)

    def _record_gold(self) -> None:
        assert self._gold is not None
        self._min_steps = len(self._gold)
        if self.gold_steps.get(self._gold_key()) != self._min_steps:
            self.gold_steps.put(self._gold_key(), self._min_steps)

    def _check_limit(self) -> None:
        if self._min_steps is not None and self._min_steps > self._limit:
            warnings.warn(
                f"sciworld {self._task_name} variation {self._variation} needs {self._min_steps} turns (its gold "
                f"path) but the turn limit is {self._limit}: it cannot be completed",
                TurnLimitWarning,
                stacklevel=3,
            )

    def _load(self, gold: bool) -> None:
        """Load the variation and start it exactly as the package's reset() does."""
        sw = self.engine.sw
        sw.load(self._task_name, self._variation, self._simplification_for(self._task_name), generateGoldPath=gold)
        self.engine.server.reset()
        self._text = self.engine.server.step("look around")
        self._task_text = str(self.engine.server.freeActionTaskDesc())
        self._gold = [normalise(a) for a in sw.get_gold_action_sequence()] if gold else None
        self._commands, self._choices = [], []
        self._turn, self._score, self._done = 0, 0, False

    def step(self, command: str) -> StepResult:
        if self._done:
            raise RuntimeError("sciworld: the episode is over; call reset() first")
        server = self.engine.server
        command = normalise(command)
        text = str(server.step(command))
        self._commands.append(command)
        self._turn += 1
        self._text = text
        raw_score = int(round(100 * server.getScore()))
        score = max(raw_score, 0)
        reward, self._score = (score - self._score) / 100, score
        self._choices = _choices(text)
        failed = raw_score < 0
        completed = bool(server.getCompleted()) and not failed
        info: dict[str, Any] = {"invalid_action": text.startswith(REJECTIONS), "score": raw_score, "turn": self._turn}
        if self._choices:
            info["ambiguous"] = True
        if failed or completed or self._turn >= self._limit:
            self._done = True
            info["end"] = "failed" if failed else "completed" if completed else "max_steps"
        return StepResult(observation=self._observe(text), reward=reward, done=self._done, success=completed, info=info)

    def _observe(self, text: str) -> Observation:
        info: dict[str, Any] = {"task_name": self._task_name, "variation": self._variation, "score": self._score,
                                "turn_limit": self._limit}
        if self._min_steps is not None:
            info["min_steps"] = self._min_steps
        if self.with_objects:
            info["objects"] = self.engine.objects()
        return Observation(
            text=text,
            task=_task_sentence(self._task_text),
            admissible_actions=self.valid_actions() if self.with_valid_actions else None,
            info=info,
        )

    def valid_actions(self) -> list[str]:
        """Every valid command in the current state: the numbered choices while the engine
        waits for an ambiguous command to be resolved, else the engine's own list."""
        if self._choices:
            return list(self._choices)
        return self.engine.valid_actions()

    def expert_action(self) -> str:
        """The next command of the loaded variation's gold path (generated on first use)."""
        if self._done:
            raise RuntimeError("sciworld: the episode is over; call reset() first")
        if self._gold is None:
            self._replay_with_gold()
        assert self._gold is not None
        k = len(self._commands)
        if self._commands != self._gold[:k]:
            step = next(i for i, (a, b) in enumerate(zip(self._commands, self._gold)) if a != b) + 1
            raise RuntimeError(f"sciworld expert: the episode left the gold path at step {step}; reset to use the expert")
        if k >= len(self._gold):
            raise RuntimeError("sciworld expert: the gold path is exhausted")
        return self._gold[k]

    def _replay_with_gold(self) -> None:
        """Reload with the gold path and replay this episode's commands (the simulator is
        deterministic per variation); refuse if the replay does not reach the same state."""
        commands, text, turn, score = self._commands, self._text, self._turn, self._score
        self._load(gold=True)
        self._record_gold()
        self._check_limit()
        for command in commands:
            self._text = str(self.engine.server.step(command))
        self._commands, self._turn, self._score = commands, turn, score
        self._choices = _choices(self._text)
        if sorted(self._text.splitlines()) != sorted(text.splitlines()):  # reloads may list objects in another order
            raise RuntimeError("sciworld expert: replaying the episode with the gold path gave a different state")

    def random_action(self, observation: Observation, rng: random.Random) -> str:
        actions = observation.admissible_actions or self.valid_actions()
        return rng.choice(actions)

    # --- prompt pieces --------------------------------------------------------------------
    def format_observation(self, observation: Observation) -> str:
        objects = observation.info.get("objects")
        if observation.admissible_actions is None and objects:
            return f"{observation.text.strip()}\n{objects_line(objects)}"
        return observation.text.strip()

    def format_admissible(self, actions: Sequence[str]) -> str:
        return compact(actions)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        self._done = True


def _choices(text: str) -> list[str]:
    """The numbers offered by an 'Ambiguous request' prompt ('0:\\tfocus on door ...')."""
    if not text.startswith(AMBIGUOUS):
        return []
    return [line.split(":", 1)[0] for line in text.splitlines()[1:] if line.split(":", 1)[0].strip().isdigit()]


def _task_sentence(text: str) -> str:
    """'Task Description:\nYour task is to boil water. ...' -> 'boil water. ...' (the prompt adds its own lead-in)."""
    text = text.strip()
    for prefix in ("Task Description:", "Your task is to ", "your task is to "):
        if text.startswith(prefix):
            text = text[len(prefix):].strip()
    return text.rstrip(".")
