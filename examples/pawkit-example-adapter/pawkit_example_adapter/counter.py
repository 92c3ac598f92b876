"""``example/counter``: start at 0, reach the target exactly with ``add 1`` / ``add 2``.

Small on purpose: it shows every piece of the pawkit ``Env`` interface in one screen.
"""

from __future__ import annotations

from typing import Sequence

from pawkit.protocol import Env, Observation, StepResult, Task, check_split

ACTIONS = ["add 1", "add 2"]


class CounterEnv(Env):
    """Reach a target number from 0; overshooting loses."""

    name = "example/counter"
    max_return = 1.0
    splits = ("train", "test")
    role = "You are an agent that counts carefully."

    def __init__(self, max_target: int = 9, max_steps: int = 10) -> None:
        # Constructors must be cheap: the trainer builds an instance only to format prompts.
        if max_target < 1:
            raise ValueError(f"max_target must be >= 1, not {max_target}")
        self.max_target = max_target
        self.max_steps = max_steps
        self.value = 0
        self.target = 1
        self.turn = 0

    def tasks(self, split: str = "train") -> Sequence[Task]:
        """Odd targets train, even targets test: the splits never share a task."""
        check_split(self, split)  # a one-line UsageError naming the splits
        parity = 1 if split == "train" else 0
        targets = [t for t in range(1, self.max_target + 1) if t % 2 == parity]
        return [Task(id=f"target-{t}", split=split, seed=t, info={"target": t}) for t in targets]

    def reset(self, task: Task | None = None, seed: int | None = None) -> Observation:
        if task is not None:
            self.target = int(task.info.get("target", task.seed or 1))
        else:
            self.target = 1 + (seed or 0) % self.max_target
        self.value = 0
        self.turn = 0
        return self._observe()

    def step(self, command: str) -> StepResult:
        self.turn += 1
        cmd = command.strip().lower()
        if cmd not in ACTIONS:
            # An unknown command is the env's business: say so, change nothing, flag it.
            return StepResult(observation=self._observe(f"Unknown command {command!r}."), info={"invalid_action": True})
        self.value += int(cmd.split()[1])
        if self.value == self.target:
            return StepResult(observation=self._observe("You hit the target!"), reward=1.0, done=True, success=True)
        if self.value > self.target:
            return StepResult(observation=self._observe("You overshot the target."), done=True)
        return StepResult(observation=self._observe(), done=self.turn >= self.max_steps)

    def expert_action(self) -> str:
        """Add 2 while that cannot overshoot, then add 1."""
        return "add 2" if self.target - self.value >= 2 else "add 1"

    # A prompt piece the adapter owns: how its observation reads to the model.
    def format_observation(self, observation: Observation) -> str:
        return f"{observation.text} (target {self.target})"

    def _observe(self, note: str = "") -> Observation:
        text = f"{note} The counter is at {self.value}.".strip()
        return Observation(text=text, admissible_actions=list(ACTIONS), task=f"make the counter exactly {self.target}")
