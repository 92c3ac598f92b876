"""``pawkit preview``: exactly what the model sees, and what training would learn from, per step.

One episode is played with a scripted policy (expert or random) through the rollout's own
code: each prompt is built by ``slot_prompt`` (prompt template, history, ``fit_prompt``'s
budget, chat template), the policy's command is written as the reply a model would give in
the configured format and parsed back by ``parse_reply``, and the env step is recorded by
``Slot.record``, so the GiGPO anchor and the next-observation text are the ones a training
step stores. The WM target is ``wm_target_ids`` of that text, as PaW trains on it. Only the
tokenizer is loaded, never the model weights (``smollm2-135m`` converts its model once, the
first time it is used at all).

What to look for: anything that changes every step but is not the world's state — a moves
counter, a timestamp, a status bar — ends up in the WM target (the model is taught to predict
it) and in the anchor (GiGPO never finds two steps in the same state).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Iterator

from rich.console import Console
from rich.text import Text

from pawkit.config import Config, RolloutConfig
from pawkit.protocol import Env, Episode, Observation, Task, UsageError, check_split
from pawkit.rollout import numbered
from pawkit.rollout.generate import Generator
from pawkit.rollout.parsing import render_action
from pawkit.rollout.play import Policy, expert_policy, random_policy
from pawkit.rollout.contract import require_contract
from pawkit.rollout.run import Slot, action_trie, grow_context, next_prompt, parse_reply
from pawkit.rollout.samples import RolloutBatch
from pawkit.rollout.tokens import plain_ids
from pawkit.rollout.trajectory import turn_pieces
from pawkit.train.models import load_tokenizer
from pawkit.train.paw import wm_target_ids

POLICIES = ("expert", "random")
THINK = "<think></think>"  # the scripted policy's (empty) reasoning, when output_format=think_action

@dataclass
class PreviewStep:
    """One step as the model saw it and as training would use it (``--json`` prints these fields)."""

    step: int  # 0-based turn of the episode
    task: str | None  # the task sentence the prompt carries
    prompt: str  # the prompt ids decoded, chat-template special tokens included
    prompt_tokens: int  # len(prompt ids)
    prompt_shortened: bool  # history dropped or the observation cut to fit rollout.max_prompt_tokens
    history_shown: int  # (observation, action) pairs in the prompt (trajectory mode: every earlier turn)
    cut_characters: int  # characters cut from the middle of the current observation
    admissible_actions: list[str] | None  # as the env listed them (None: the env gives no list)
    numbered: bool  # rollout.numbered_actions: the prompt lists them as 1..N, the reply is a number
    constrained: bool  # rollout.constrained: decoding is restricted to these replies
    reply: str  # the scripted policy's reply, as a model would write it
    reply_tokens: int  # its ids, EOS included
    action: str  # the command the trainer's parser sends to the env
    invalid: bool  # the parser's invalid flag (penalised by rollout.invalid_penalty)
    parse_error: str | None
    anchor: str  # GiGPO's state key of this step's observation
    wm_target: str | None  # paw.delimiter + o_{t+1} (trajectory mode: o_{t+1}'s message in the sequence), tokenised, cut, decoded; None: no target
    wm_target_tokens: int
    wm_target_cut: bool  # longer than paw.max_obs_tokens
    paw_enabled: bool  # whether this config trains on the WM target at all
    reward: float
    done: bool
    success: bool


def make_policy(name: str, env: Env, seed: int) -> Policy:
    """The scripted policy ``name`` (expert | random); a ``UsageError`` for another name or an
    env without an expert."""
    if name not in POLICIES:
        raise UsageError(f"unknown policy {name!r}; choose from {', '.join(POLICIES)}")
    if name == "expert" and not env.has_expert:
        raise UsageError(f"environment {env.name!r} has no expert policy; use --policy random")
    return expert_policy if name == "expert" else random_policy(seed)


def pick_task(env: Env, split: str, seed: int) -> Task:
    """Task ``seed mod len(tasks)`` of ``split`` (as ``pawkit play``), or a seed task when the
    split lists none."""
    tasks = list(env.tasks(split))
    return tasks[seed % len(tasks)] if tasks else Task(id=f"seed-{seed}", split=split, seed=seed)


def scripted_reply(command: str, observation: Observation, cfg: RolloutConfig) -> str:
    """The reply a model gives to choose ``command``: its number with ``numbered_actions`` (when
    listed), in ``output_format`` (``render_action``; ``think_action`` adds an empty think block)."""
    label = command
    if cfg.numbered_actions and observation.admissible_actions:
        options = numbered.choices(observation.admissible_actions)
        if command in options:
            label = str(options.index(command) + 1)
    reply = render_action(label, cfg.output_format)
    return THINK + reply if cfg.output_format == "think_action" else reply


def preview_episode(env: Env, tokenizer, config: Config, policy: Policy, task: Task, steps: int) -> Iterator[PreviewStep]:
    """Play ``task`` with ``policy`` and yield the first ``steps`` steps (fewer when the episode
    ends first), each built by the rollout's own code with ``config``'s rollout and PaW settings.

    Raises ``UsageError`` when the env breaks its contract (the ``check_result`` message) or the
    prompt's head does not fit ``rollout.max_prompt_tokens``; the env's own exceptions propagate.
    """
    cfg = config.rollout
    generator = Generator(None, tokenizer, cfg)  # encode and template only: no model needed
    slot = Slot(index=0, group_id="preview", task=task, traj_id="preview",
                episode=Episode(env=env.name, task_id=task.id, group_id="preview", end_reason="max_steps"))
    batch = RolloutBatch(episodes=[slot.episode], samples=[])
    slot.start(require_contract(env, "reset", env.reset(task, task.seed)), cfg.max_steps or env.max_steps, batch)
    pieces = turn_pieces(generator) if cfg.context == "trajectory" else None
    for step in range(steps):
        if not slot.running or step >= slot.limit:
            return
        obs = slot.observation
        assert obs is not None
        history = len(slot.history)
        prompt_ids, fitted, shortened = next_prompt(env, generator, cfg, slot)  # trajectory mode: the episode so far
        trie = action_trie(generator, cfg, obs)
        reply = scripted_reply(policy(env, obs), obs, cfg)
        response = plain_ids(tokenizer, reply) + [tokenizer.eos_token_id]
        action = parse_reply(generator, cfg, response, obs)
        result = require_contract(env, "step", env.step(action.command))
        slot.record(env, step, prompt_ids, response, trie, action, result)
        sample = slot.samples[-1]
        target = sample.next_observation_text
        if pieces is not None:  # the WM target is the next observation's message inside the sequence
            grow_context(env, cfg, generator, pieces, slot, result, more_turns=step + 1 < slot.limit)
            wm_ids = sample.context[sample.wm_start : sample.wm_start + min(sample.wm_tokens, config.paw.max_obs_tokens)]
            cut = sample.wm_tokens > len(wm_ids)
        else:
            wm_ids = wm_target_ids(tokenizer, target, config.paw)
            cut = bool(target) and len(plain_ids(tokenizer, config.paw.delimiter + target)) > len(wm_ids)
        yield PreviewStep(
            step=step, task=slot.task_text,
            prompt=tokenizer.decode(prompt_ids, skip_special_tokens=False), prompt_tokens=len(prompt_ids),
            prompt_shortened=shortened, history_shown=fitted.history_shown if fitted else history,
            cut_characters=fitted.cut_characters if fitted else 0,
            admissible_actions=list(obs.admissible_actions) if obs.admissible_actions is not None else None,
            numbered=cfg.numbered_actions, constrained=trie is not None,
            reply=reply, reply_tokens=len(response), action=action.command, invalid=sample.invalid,
            parse_error=action.parse_error, anchor=sample.anchor,
            wm_target=tokenizer.decode(wm_ids, skip_special_tokens=False) if wm_ids else None,
            wm_target_tokens=len(wm_ids),
            wm_target_cut=cut,
            paw_enabled=config.paw.enabled, reward=result.reward, done=result.done, success=result.success,
        )


def run_preview(env: Env, config: Config, policy: str, steps: int, seed: int, as_json: bool, console: Console) -> None:
    """``pawkit preview``: the first ``steps`` steps of task ``pick_task(seed)`` of
    ``env.train_split``, played by ``policy`` (expert | random), printed as sections or one JSON
    object per line. Raises ``UsageError`` (one line) for ``steps`` < 1, an unknown policy, an env
    without an expert, a bad split or model name, or an env that breaks its contract."""
    if steps < 1:
        raise UsageError(f"--steps must be at least 1, got {steps}")
    scripted = make_policy(policy, env, seed)
    split = config.env.train_split
    try:
        check_split(env, split)
    except UsageError as exc:
        raise UsageError(f"env.train_split: {exc}") from None
    tokenizer = load_tokenizer(config.model)
    for step in preview_episode(env, tokenizer, config, scripted, pick_task(env, split, seed), steps):
        if as_json:
            print(json.dumps(asdict(step)), flush=True)
        else:
            print_step(console, step, config.paw.max_obs_tokens)


def print_step(console: Console, step: PreviewStep, max_obs_tokens: int) -> None:
    """``step`` as readable sections; env text is printed as plain ``Text`` (never rich markup)."""
    console.rule(Text(f"step {step.step + 1}"))
    shortened = "SHORTENED to fit rollout.max_prompt_tokens" if step.prompt_shortened else "not shortened"
    cut = f", {step.cut_characters} observation characters cut" if step.cut_characters else ""
    _section(console, f"prompt: {step.prompt_tokens} tokens, {shortened} ({step.history_shown} history pair{'s' if step.history_shown != 1 else ''} shown{cut})",
             _framed(step.prompt))
    if step.admissible_actions is None:
        _section(console, "admissible actions: none listed by the env", "")
    else:
        how = "decoding is restricted to these (rollout.constrained)" if step.constrained else "shown in the prompt"
        listing = (numbered.listing(step.admissible_actions) if step.numbered
                   else "\n".join(step.admissible_actions))
        _section(console, f"admissible actions ({len(step.admissible_actions)}): {how}", _indented(listing))
    verdict = f"INVALID: {step.parse_error}" if step.invalid else "valid"
    _section(console, "reply and parsed action",
             f"  reply:  {step.reply!r} ({step.reply_tokens} tokens)\n  action: {step.action!r} ({verdict})")
    _section(console, "GiGPO anchor (the state key steps are grouped by)", _framed(step.anchor))
    if step.wm_target is None:
        _section(console, "WM target: none (no next observation text: not eligible)", "")
    else:
        cut = f"CUT to paw.max_obs_tokens={max_obs_tokens}" if step.wm_target_cut else f"not cut (paw.max_obs_tokens={max_obs_tokens})"
        trained = "" if step.paw_enabled else "; paw.enabled=false: not trained on in this config"
        _section(console, f"WM target (the next observation as trained on): {step.wm_target_tokens} tokens, {cut}{trained}",
                 _framed(step.wm_target))
    _section(console, f"reward {step.reward:g}, done {str(step.done).lower()}, success {str(step.success).lower()}", "")


def _section(console: Console, header: str, body: str) -> None:
    console.print(Text(header, style="bold"), soft_wrap=True)
    if body:
        console.print(Text(body), soft_wrap=True, highlight=False)


def _framed(text: str) -> str:
    """Every line of ``text`` after a bar, so leading and trailing blank lines stay visible."""
    return "\n".join("  │ " + line for line in text.split("\n"))


def _indented(text: str) -> str:
    return "\n".join("  " + line for line in text.split("\n"))
