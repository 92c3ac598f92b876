"""Batched multi-turn rollouts: ``tasks × group_size`` episodes stepped in lock-step.

Every step of every episode becomes a ``StepSample`` holding the exact token ids the model
saw and produced (never re-tokenised for the loss), plus what PaW and GiGPO need later.
"""

from __future__ import annotations

import random
import time
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from pawkit import numbered
from pawkit.config import RolloutConfig
from pawkit.constrained import ActionTrie
from pawkit.parsing import parse_action
from pawkit.prompts import build_prompt
from pawkit.protocol import Env, Episode, Observation, Task, Transition


@dataclass
class StepSample:
    group_id: str
    traj_id: str
    step_index: int
    prompt_ids: list[int]
    response_ids: list[int]
    reward: float
    invalid: bool
    anchor: str
    next_observation_text: str | None
    allowed: list[list[int]] | None = None  # constrained decoding: allowed ids per response token
    episode_return: float = 0.0


@dataclass
class RolloutBatch:
    episodes: list[Episode]
    samples: list[StepSample]
    env_errors: int = 0
    env_error_messages: list[str] = field(default_factory=list)
    truncated_prompts: int = 0
    env_seconds: float = 0.0
    generate_seconds: float = 0.0
    generated_tokens: int = 0

    def metrics(self) -> dict[str, float]:
        kept = [e for e in self.episodes if e.end_reason != "env_error"]
        n = max(len(kept), 1)
        steps = sum(len(e.transitions) for e in kept)
        return {
            "success_rate": sum(e.success for e in kept) / n,
            "mean_return": sum(e.return_ for e in kept) / n,
            "mean_steps": steps / n,
            "invalid_action_rate": sum(not t.action.valid for e in kept for t in e.transitions) / max(steps, 1),
            "episodes": float(len(self.episodes)),
            "env_errors": float(self.env_errors),
            "truncated_prompts": float(self.truncated_prompts),
            "env_seconds": self.env_seconds,
            "generate_seconds": self.generate_seconds,
            "generated_tokens": float(self.generated_tokens),
        }


class Generator:
    """Left-padded batched sampling with HF ``generate``; optionally restricted to a trie."""

    def __init__(self, model, tokenizer, cfg: RolloutConfig):
        self.model, self.tokenizer, self.cfg = model, tokenizer, cfg
        self._whole_vocab: list[int] | None = None

    def encode(self, text: str) -> list[int]:
        if self.cfg.chat_template and self.tokenizer.chat_template:
            ids = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True
            )
            ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
            return list(ids)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    @torch.no_grad()
    def generate(
        self, prompts: list[list[int]], tries: list[ActionTrie | None], temperature: float
    ) -> list[list[int]]:
        out: list[list[int]] = []
        size = self.cfg.generation_batch_size
        for start in range(0, len(prompts), size):
            out.extend(self._generate(prompts[start : start + size], tries[start : start + size], temperature))
        return out

    def _generate(self, prompts, tries, temperature) -> list[list[int]]:
        tok, model = self.tokenizer, self.model
        eos, pad = tok.eos_token_id, tok.pad_token_id
        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), pad, dtype=torch.long)
        attention = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, p in enumerate(prompts):
            input_ids[i, width - len(p) :] = torch.tensor(p)
            attention[i, width - len(p) :] = 1
        kwargs: dict[str, Any] = dict(
            max_new_tokens=self.cfg.max_new_tokens, pad_token_id=pad, eos_token_id=eos,
        )
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature, top_p=self.cfg.top_p, top_k=0)
        else:
            kwargs.update(do_sample=False)
        if any(t is not None for t in tries):
            kwargs["prefix_allowed_tokens_fn"] = lambda b, ids: self._allowed(tries[b], ids[width:].tolist())
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        sequences = model.generate(input_ids=input_ids.to(device), attention_mask=attention.to(device), **kwargs)
        model.train(was_training)
        responses = []
        for row in sequences[:, width:].tolist():
            cut = row.index(eos) + 1 if eos in row else len(row)
            responses.append(row[:cut])
        return responses

    def _allowed(self, trie: ActionTrie | None, generated: list[int]) -> list[int]:
        if trie is None:  # an unconstrained row in a mixed batch: built once, not per token
            if self._whole_vocab is None:
                self._whole_vocab = list(range(len(self.tokenizer)))
            return self._whole_vocab
        eos = self.tokenizer.eos_token_id
        if eos in generated:  # finished rows keep emitting padding
            return [self.tokenizer.pad_token_id]
        return trie.allowed(generated) or [eos]


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
