"""Sequential episodes with a scripted policy (human, random, expert): `pawkit play`."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Sequence

from pawkit.protocol import Action, Env, Episode, Observation, Task, Transition
from pawkit.rollout.contract import require_contract
from pawkit.rollout.samples import episode_stats

Policy = Callable[[Env, Observation], str]


def human_policy(read: Callable[[str], str] = input, show: Callable[[str], None] = print) -> Policy:
    def policy(env: Env, observation: Observation) -> str:
        show(env.format_observation(observation))
        if observation.admissible_actions:
            show("Admissible actions: " + ", ".join(observation.admissible_actions))
        return read("> ").strip()

    return policy


def random_policy(seed: int) -> Policy:
    rng = random.Random(seed)
    return lambda env, observation: env.random_action(observation, rng)


def expert_policy(env: Env, observation: Observation) -> str:
    return env.expert_action()


POLICIES: dict[str, Callable[[int], Policy]] = {
    "human": lambda seed: human_policy(),
    "random": random_policy,
    "expert": lambda seed: expert_policy,
}


def play_episode(env: Env, policy: Policy, task: Task | None, seed: int | None, max_steps: int, group_id: str = "0") -> Episode:
    observation = require_contract(env, "reset", env.reset(task=task, seed=seed))
    episode = Episode(env=env.name, task_id=task.id if task else f"seed-{seed}", group_id=group_id)
    episode.end_reason = "max_steps"
    own = observation.info.get("turn_limit")  # an env's own bound for this episode (see run.Slot.start)
    if isinstance(own, (int, float)) and own >= 1:
        max_steps = min(max_steps, int(own))
    for _ in range(max_steps):
        command = policy(env, observation)
        result = require_contract(env, "step", env.step(command))
        episode.transitions.append(
            Transition(
                observation=observation,
                action=Action(raw=command, command=command, valid=not result.info.get("invalid_action", False)),
                next_observation=result.observation,
                reward=result.reward,
                done=result.done,
                info=result.info,
            )
        )
        episode.return_ += result.reward
        observation = result.observation
        if result.done:
            episode.success = result.success
            episode.end_reason = "done"
            break
    return episode


@dataclass
class Summary:
    env: str
    episodes: int
    success_rate: float
    mean_return: float
    mean_steps: float
    invalid_action_rate: float

    @classmethod
    def of(cls, env: str, episodes: Sequence[Episode]) -> "Summary":
        return cls(env=env, episodes=len(episodes), **episode_stats(episodes))
