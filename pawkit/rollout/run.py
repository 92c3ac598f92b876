"""Batched multi-turn rollouts: ``tasks × group_size`` episodes stepped in lock-step.

Every step of every episode becomes a ``StepSample`` holding the exact token ids the model
saw and produced (never re-tokenised for the loss), plus what PaW and GiGPO need later.
"""

from __future__ import annotations

import random
import time
import traceback
import uuid
from typing import Sequence

from pawkit.config import RolloutConfig
from pawkit.protocol import Env, Episode, Observation, Task, Transition
from pawkit.rollout import numbered
from pawkit.rollout.constrained import ActionTrie
from pawkit.rollout.generate import Generator
from pawkit.rollout.parsing import parse_action
from pawkit.rollout.prompts import build_prompt
from pawkit.rollout.samples import RolloutBatch, StepSample


def draw_tasks(env: Env, split: str, count: int, rng: random.Random) -> list[Task]:
    tasks = list(env.tasks(split))
    if not tasks:
        return [Task(id=f"seed-{s}", split=split, seed=s) for s in (rng.randrange(2**31) for _ in range(count))]
    return [rng.choice(tasks) for _ in range(count)]


def run_rollout(
    env: Env,
    pool,
    generator: Generator,
    tasks: Sequence[Task],
    group_size: int,
    cfg: RolloutConfig,
    temperature: float,
    max_steps: int | None = None,
) -> RolloutBatch:
    """Play ``group_size`` episodes of each task; all members of a group start from the same state.

    ``env`` is a local instance used only for prompt pieces; ``pool`` executes the episodes.
    An env exception drops that episode (counted in ``env_errors``); the rest carry on.
    """
    limit = max_steps or cfg.max_steps or env.max_steps
    slots = [(g, task) for g, task in enumerate(tasks) for _ in range(group_size)]
    group_ids = [f"g{g}-{uuid.uuid4().hex[:8]}" for g in range(len(tasks))]
    episodes = [
        Episode(env=env.name, task_id=task.id, group_id=group_ids[g], end_reason="max_steps") for g, task in slots
    ]
    traj_ids = [uuid.uuid4().hex[:12] for _ in slots]
    batch = RolloutBatch(episodes=episodes, samples=[])
    per_slot: list[list[StepSample]] = [[] for _ in slots]
    history: list[list[tuple[str, str]]] = [[] for _ in slots]

    t0 = time.perf_counter()
    resets = pool.reset([(i, task, task.seed) for i, (_, task) in enumerate(slots)])
    batch.env_seconds += time.perf_counter() - t0
    observations: list[Observation | None] = []
    task_text: list[str | None] = []
    for i, result in enumerate(resets):
        if isinstance(result, BaseException):
            _drop(batch, i, result)
            observations.append(None)
            task_text.append(None)
        else:
            observations.append(result)
            task_text.append(result.task or slots[i][1].description)

    for step in range(limit):
        active = [i for i, obs in enumerate(observations) if obs is not None]
        if not active:
            break
        prompts, tries = [], []
        for i in active:
            text = build_prompt(
                env, observations[i], task_text[i], history[i], cfg.history_length, cfg.output_format,
                cfg.prompt_style, show_actions=not cfg.constrained, numbered=cfg.numbered_actions,
            )
            ids = generator.encode(text)
            if len(ids) > cfg.max_prompt_tokens:
                ids = ids[-cfg.max_prompt_tokens :]
                batch.truncated_prompts += 1
            prompts.append(ids)
            admissible = observations[i].admissible_actions
            choices = numbered.labels(admissible) if cfg.numbered_actions else admissible
            tries.append(
                ActionTrie.build(generator.tokenizer, choices, cfg.output_format)
                if cfg.constrained and admissible
                else None
            )
        t0 = time.perf_counter()
        responses = generator.generate(prompts, tries, temperature)
        batch.generate_seconds += time.perf_counter() - t0
        batch.generated_tokens += sum(len(r) for r in responses)
        actions = [
            parse_action(
                generator.tokenizer.decode(r, skip_special_tokens=True), cfg.output_format, cfg.fallback_chars
            )
            for r in responses
        ]
        if cfg.numbered_actions:
            actions = [numbered.resolve(a, observations[i].admissible_actions) for i, a in zip(active, actions)]
        t0 = time.perf_counter()
        results = pool.step([(i, a.command) for i, a in zip(active, actions)])
        batch.env_seconds += time.perf_counter() - t0
        for i, prompt, response, trie, action, result in zip(active, prompts, responses, tries, actions, results):
            if isinstance(result, BaseException):
                _drop(batch, i, result)
                observations[i] = None
                continue
            obs = observations[i]
            episode = episodes[i]
            next_text = env.format_observation(result.observation) if result.observation.text else None
            per_slot[i].append(
                StepSample(
                    group_id=group_ids[slots[i][0]],
                    traj_id=traj_ids[i],
                    step_index=step,
                    prompt_ids=prompt,
                    response_ids=response,
                    reward=result.reward,
                    invalid=not action.valid,
                    anchor=env.anchor(obs),
                    next_observation_text=next_text,
                    allowed=trie.allowed_per_position(response) if trie is not None else None,
                )
            )
            episode.transitions.append(
                Transition(
                    observation=obs, action=action, next_observation=result.observation,
                    reward=result.reward, done=result.done, info=result.info,
                )
            )
            episode.return_ += result.reward
            history[i].append((env.format_observation(obs), action.command))
            if result.done:
                episode.success = result.success
                episode.end_reason = "done"
                observations[i] = None
            else:
                observations[i] = result.observation

    for i, episode in enumerate(episodes):
        if episode.end_reason == "env_error":
            continue
        for sample in per_slot[i]:
            sample.episode_return = episode.return_
            batch.samples.append(sample)
    return batch


def _drop(batch: RolloutBatch, slot: int, error: BaseException) -> None:
    episode = batch.episodes[slot]
    if episode.end_reason != "env_error":
        episode.end_reason = "env_error"
        batch.env_errors += 1
        batch.env_error_messages.append(f"{episode.task_id}: {_describe(error)}")


def _describe(error: BaseException) -> str:
    """``Type: message`` plus the traceback: the local one, or the worker's (kept as a note)."""
    text = "".join(traceback.format_exception(error)).rstrip()
    head = f"{type(error).__name__}: {error}"
    return head if text == head else f"{head}\n{text}"
