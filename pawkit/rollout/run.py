"""Batched multi-turn rollouts: ``tasks × group_size`` episodes stepped in lock-step.

``run_rollout`` plays ``len(tasks) * group_size`` slots (task-major: the ``group_size``
members of task ``g`` are slots ``g*group_size .. (g+1)*group_size - 1``, all reset to the
same state). Each turn makes one ``generate`` call over the prompts of every running slot and
one ``pool.step`` call over their actions, until every slot is done, dropped by an env error,
or out of turns. Every step becomes a ``StepSample`` holding the exact token ids the model saw
and produced (never re-tokenised for the loss), plus what PaW and GiGPO need later; the
batch lists them in slot order, then step order.

An env that breaks the ``Env`` contract (``reset`` not returning an ``Observation``, ``step``
not a ``StepResult`` — a str, None, a gym-style tuple —, a NaN or infinite reward, a lone
surrogate such as ``"\\ud800"`` in an observation's text, task or actions) is an env error like
an exception: that episode is dropped and counted in ``env_errors``, with one line naming the
env, the method and the fault. Lone surrogates are not valid Unicode, so the tokenizer never
sees one: results carrying them are dropped, and what the adapter formats into a prompt or a
WM target is additionally passed through with each replaced by U+FFFD.
"""

from __future__ import annotations

import random
import time
import traceback
import uuid
import warnings
from dataclasses import dataclass, field
from typing import Literal, Sequence

from pawkit.config import RolloutConfig
from pawkit.protocol import Action, Env, Episode, Observation, StepResult, Task, Transition, UsageError, check_split
from pawkit.rollout import numbered
from pawkit.rollout.budget import FittedPrompt, fit_prompt
from pawkit.rollout.constrained import ActionTrie
from pawkit.rollout.generate import Generator, Sampled, TurnLost
from pawkit.rollout.contract import _SURROGATE, EnvContractError, check_result  # noqa: F401 (check_result: re-exported)
from pawkit.rollout.parsing import parse_action
from pawkit.rollout.prompts import build_prompt
from pawkit.rollout.samples import RolloutBatch, StepSample
from pawkit.rollout.trajectory import END_REASON, TurnPieces, append_turn, turn_pieces

Status = Literal["running", "done", "env_error"]
def check_splits(env: Env, train_split: str, eval_split: str, evaluates: bool) -> None:
    """Before a run loads its model: both splits exist (a UsageError naming the key), and the
    eval split has tasks when evaluations will run (an empty one would fail after training started)."""
    for key, split in (("env.train_split", train_split), ("env.eval_split", eval_split)):
        try:
            check_split(env, split)
        except UsageError as exc:
            raise UsageError(f"{key}: {exc}") from None
    if evaluates and not list(env.tasks(eval_split)):
        raise UsageError(f"env.eval_split: split {eval_split!r} of {env.name} has no tasks to evaluate on")


def draw_tasks(env: Env, split: str, count: int, rng: random.Random) -> list[Task]:
    tasks = list(env.tasks(split))
    if not tasks:
        return [Task(id=f"seed-{s}", split=split, seed=s) for s in (rng.randrange(2**31) for _ in range(count))]
    return [rng.choice(tasks) for _ in range(count)]


@dataclass
class Slot:
    """One trajectory of a rollout and everything it carries between turns (one per pool slot).

    ``status`` is ``running`` until the env says done or raises (``env_error``); a slot still
    running when the turns run out keeps its episode's ``end_reason`` of ``max_steps``.
    """

    index: int  # pool slot
    group_id: str
    task: Task
    traj_id: str
    episode: Episode
    observation: Observation | None = None  # what the next prompt shows; None before reset
    task_text: str | None = None
    history: list[tuple[str, str]] = field(default_factory=list)  # (observation text, command)
    samples: list[StepSample] = field(default_factory=list)
    status: Status = "running"
    limit: int = 0  # this episode's turn limit: the run's, lowered to the env's info["turn_limit"]
    context: list[int] | None = None  # rollout.context=trajectory: the episode's token sequence so far

    @property
    def running(self) -> bool:
        return self.status == "running"

    def start(self, observation: Observation, limit: int, batch: RolloutBatch) -> None:
        """Begin after reset. An env may bound this episode (``info["turn_limit"]``) and say how
        many turns it needs at least (``info["min_steps"]``); a need above the limit is counted
        in ``unsolvable_episodes`` and warned about once per task."""
        self.observation = observation
        self.task_text = observation.task or self.task.description
        own = observation.info.get("turn_limit")
        self.limit = min(limit, int(own)) if isinstance(own, (int, float)) and own >= 1 else limit
        need = observation.info.get("min_steps")
        if isinstance(need, (int, float)) and need > self.limit:
            batch.unsolvable_episodes += 1
            warnings.warn(
                f"task {self.task.id} of {self.episode.env} needs at least {need} turns but this run allows "
                f"{self.limit} (rollout.max_steps or the env's limit): no policy can succeed on it", stacklevel=2,
            )

    def drop(self, batch: RolloutBatch, error: BaseException) -> None:
        """End the episode as ``env_error`` (counted once in ``batch``); its samples are discarded."""
        if self.status == "env_error":
            return
        self.status = self.episode.end_reason = "env_error"
        self.observation = None
        batch.env_errors += 1
        batch.env_error_messages.append(f"{self.episode.task_id}: {_describe(error)}")

    def record(
        self, env: Env, step: int, prompt: list[int], response: list[int], trie: ActionTrie | None,
        action: Action, result: StepResult, logprobs: list[float] | None = None, entropies: list[float] | None = None,
    ) -> None:
        """Apply one env step: sample, transition, return, history, and done/success.
        ``logprobs`` / ``entropies``: the sampler's, per response token (``Generator.sample``)."""
        obs, episode = self.observation, self.episode
        assert obs is not None
        shown = env.format_observation(obs)  # o_t as the prompt showed it
        next_text = _SURROGATE.sub("\ufffd", env.format_observation(result.observation)) if result.observation.text else None
        self.samples.append(
            StepSample(
                group_id=self.group_id,
                traj_id=self.traj_id,
                step_index=step,
                prompt_ids=prompt,
                response_ids=response,
                reward=result.reward,
                invalid=not action.valid,
                anchor=env.anchor(obs),
                next_observation_text=next_text,
                allowed=trie.allowed_per_position(response) if trie is not None else None,
                sampled_logprobs=logprobs,
                sampled_entropies=entropies,
                action_text=action.command,
                observation_text=_SURROGATE.sub("\ufffd", shown),
            )
        )
        episode.transitions.append(
            Transition(
                observation=obs, action=action, next_observation=result.observation,
                reward=result.reward, done=result.done, info=result.info,
            )
        )
        episode.return_ += result.reward
        self.history.append((shown, action.command))
        if result.done:
            episode.success = result.success
            episode.end_reason = self.status = "done"
            self.observation = None
        else:
            self.observation = result.observation


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

    ``env`` is a local instance used only for prompt pieces; ``pool`` executes the episodes
    (``len(tasks) * group_size`` slots). An env exception drops that episode (counted in
    ``env_errors``, its samples left out); the rest carry on. An engine's ``TurnLost`` drops
    the episodes of that turn the same way.
    """
    limit = max_steps or cfg.max_steps or env.max_steps
    slots = _make_slots(env, tasks, group_size)
    pieces = turn_pieces(generator) if cfg.context == "trajectory" else None
    batch = RolloutBatch(episodes=[s.episode for s in slots], samples=[])

    t0 = time.perf_counter()
    resets = pool.reset([(s.index, s.task, s.task.seed) for s in slots])
    batch.env_seconds += time.perf_counter() - t0
    for slot, result in zip(slots, resets):
        result = check_result(env, "reset", result)
        if isinstance(result, BaseException):
            slot.drop(batch, result)
        else:
            slot.start(result, limit, batch)

    for step in range(limit):
        active = [s for s in slots if s.running and step < s.limit]
        if not active:
            break
        prompts, tries = _build_prompts(env, generator, cfg, active, batch)
        try:
            sampled, actions = _act(generator, cfg, active, prompts, tries, temperature, batch)
        except TurnLost as error:  # the engine recovered, this turn's replies are gone
            for slot in active:
                slot.drop(batch, error)
            batch.engine_lost += len(active)
            continue
        t0 = time.perf_counter()
        results = pool.step([(s.index, a.command) for s, a in zip(active, actions)])
        batch.env_seconds += time.perf_counter() - t0
        for k, (slot, prompt, trie, action, result) in enumerate(zip(active, prompts, tries, actions, results)):
            result = check_result(env, "step", result)
            if isinstance(result, BaseException):
                slot.drop(batch, result)
            else:
                slot.record(env, step, prompt, sampled.ids[k], trie, action, result,
                            logprobs=sampled.logprobs[k], entropies=sampled.entropies[k])
                if pieces is not None:
                    grow_context(env, cfg, generator, pieces, slot, result, more_turns=step + 1 < slot.limit)

    for slot in slots:
        if slot.status == "env_error":
            continue
        for sample in slot.samples:
            sample.episode_return = slot.episode.return_
            batch.samples.append(sample)
    return batch


def _make_slots(env: Env, tasks: Sequence[Task], group_size: int) -> list[Slot]:
    """Task-major slots; ids drawn as all group ids first, then one trajectory id per slot."""
    group_ids = [f"g{g}-{uuid.uuid4().hex[:8]}" for g in range(len(tasks))]
    members = [(g, task) for g, task in enumerate(tasks) for _ in range(group_size)]
    return [
        Slot(
            index=i, group_id=group_ids[g], task=task, traj_id=uuid.uuid4().hex[:12],
            episode=Episode(env=env.name, task_id=task.id, group_id=group_ids[g], end_reason="max_steps"),
        )
        for i, (g, task) in enumerate(members)
    ]


def _build_prompts(
    env: Env, generator: Generator, cfg: RolloutConfig, active: list[Slot], batch: RolloutBatch
) -> tuple[list[list[int]], list[ActionTrie | None]]:
    """Prompt ids (``slot_prompt``; a shortened prompt is counted in ``truncated_prompts``) and,
    when constrained, the trie of admissible replies, for each active slot."""
    prompts: list[list[int]] = []
    tries: list[ActionTrie | None] = []
    for slot in active:
        ids, _, shortened = next_prompt(env, generator, cfg, slot)
        if shortened:
            batch.truncated_prompts += 1
        prompts.append(ids)
        tries.append(action_trie(generator, cfg, slot.observation))
    return prompts, tries


def next_prompt(env: Env, generator: Generator, cfg: RolloutConfig, slot: Slot) -> tuple[list[int], FittedPrompt | None, bool]:
    """The ids ``slot``'s next turn samples from, the ``FittedPrompt`` they came from (None on a
    later trajectory-mode turn: the context itself) and whether it was shortened. Step mode:
    ``slot_prompt`` every turn. Trajectory mode: ``slot_prompt`` (no history yet) starts the
    episode's context on the first turn; later turns are the context as grown."""
    if slot.context is not None:
        return list(slot.context), None, False
    fitted, shortened = slot_prompt(env, generator, cfg, slot)
    if cfg.context == "trajectory":
        slot.context = list(fitted.ids)
    return list(fitted.ids), fitted, shortened


def slot_prompt(env: Env, generator: Generator, cfg: RolloutConfig, slot: Slot) -> tuple[FittedPrompt, bool]:
    """The prompt ids of ``slot``'s next turn, exactly as the model gets them, and whether they
    were shortened (history entries dropped below ``min(history_length, len(history))``, or the
    observation's middle cut). Within ``max_prompt_tokens`` by ``fit_prompt``: the head always
    survives; raises ``PromptBudgetError`` when even the head does not fit."""
    obs = slot.observation
    assert obs is not None

    def render(shown: int, observation: Observation) -> str:
        return _SURROGATE.sub("\ufffd", build_prompt(
            env, observation, slot.task_text, slot.history, shown, cfg.output_format,
            cfg.prompt_style, show_actions=not cfg.constrained, numbered=cfg.numbered_actions,
        ))

    fitted = fit_prompt(render, generator.encode, obs, cfg.history_length, len(slot.history), cfg.max_prompt_tokens)
    return fitted, fitted.truncated or fitted.history_shown < min(cfg.history_length, len(slot.history))


def grow_context(env: Env, cfg: RolloutConfig, generator: Generator, pieces: TurnPieces, slot: Slot,
                 result: StepResult, more_turns: bool) -> None:
    """Trajectory mode, after ``slot.record``: the reply and the next observation join the
    episode's sequence (pawkit/rollout/trajectory.py); the step's sample learns where. A running
    episode whose next observation does not fit in ``rollout.max_prompt_tokens`` ends with
    ``end_reason`` ``context`` (when it had turns left)."""
    assert slot.context is not None
    sample = slot.samples[-1]
    sample.context, sample.start = slot.context, len(slot.context)
    segment = append_turn(env, cfg, generator.tokenizer, pieces, slot.context, sample.response_ids, result.observation, result.done)
    if segment is not None:
        sample.wm_start, sample.wm_tokens = segment.wm_start, segment.wm_tokens
    elif slot.running and more_turns and result.observation.text:
        slot.status = "done"
        slot.episode.end_reason = END_REASON
        slot.observation = None


def action_trie(generator: Generator, cfg: RolloutConfig, observation: Observation | None) -> ActionTrie | None:
    """The token trie of the replies constrained decoding allows in ``observation`` (its
    admissible actions, or their numbers 1..N); None when unconstrained or there is no list."""
    admissible = observation.admissible_actions if observation is not None else None
    if not (cfg.constrained and admissible):
        return None
    choices = numbered.labels(admissible) if cfg.numbered_actions else admissible
    return ActionTrie.build(generator.tokenizer, choices, cfg.output_format)


def _act(
    generator: Generator, cfg: RolloutConfig, active: list[Slot], prompts: list[list[int]],
    tries: list[ActionTrie | None], temperature: float, batch: RolloutBatch,
) -> tuple[Sampled, list[Action]]:
    """One batched ``generate`` call over all active slots, and the action each reply parses to."""
    t0 = time.perf_counter()
    sampled = generator.sample(prompts, tries, temperature)
    batch.generate_seconds += time.perf_counter() - t0
    batch.generated_tokens += sum(len(r) for r in sampled.ids)
    actions = [parse_reply(generator, cfg, r, s.observation) for s, r in zip(active, sampled.ids)]
    return sampled, actions


def parse_reply(generator: Generator, cfg: RolloutConfig, response: list[int], observation: Observation) -> Action:
    """The action the reply ids ``response`` (EOS included when the model stopped) stand for, as
    the trainer reads them: decoded without special tokens, parsed per ``output_format``, and
    with ``numbered_actions`` a number resolved to ``observation``'s action. Never raises: a
    malformed reply is an invalid ``Action``."""
    action = parse_action(generator.tokenizer.decode(response, skip_special_tokens=True), cfg.output_format, cfg.fallback_chars)
    return numbered.resolve(action, observation.admissible_actions) if cfg.numbered_actions else action


def _describe(error: BaseException) -> str:
    """``Type: message`` plus the traceback: the local one, or the worker's (kept as a note)."""
    text = "".join(traceback.format_exception(error)).rstrip()
    head = f"{type(error).__name__}: {error}"
    return head if text == head or isinstance(error, EnvContractError) else f"{head}\n{text}"
