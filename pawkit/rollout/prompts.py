"""Per-step prompts in verl-agent's protocol: task, recent history, observation, actions, format."""

from __future__ import annotations

from typing import Sequence

from pawkit.protocol import Env, Observation
from pawkit.rollout import numbered as numbered_actions

FORMAT_INSTRUCTIONS = {
    "think_action": (
        "You should first reason step-by-step about the current situation. This reasoning process MUST be "
        "enclosed within <think> </think> tags. Once you've finished your reasoning, you should choose an "
        "admissible action for current step and present it within <action> </action> tags."
    ),
    "action": "Choose an admissible action for the current step and present it within <action> </action> tags.",
    "plain": "Reply with the action only.",
}


def history_lines(history: Sequence[tuple[str, str]], history_length: int) -> tuple[str, int]:
    """The last ``history_length`` (observation, action) pairs, numbered by global step."""
    if history_length <= 0 or not history:
        return "", 0
    start = max(0, len(history) - history_length)
    lines = [
        f"[Observation {k + 1}: '{obs}', Action {k + 1}: '{act}']"
        for k, (obs, act) in enumerate(history[start:], start=start)
    ]
    return "\n".join(lines), len(lines)


def verl_prompt(env: Env, observation: Observation, task: str | None, history, history_length: int, output_format: str, show_actions: bool, numbered: bool = False) -> str:
    """verl-agent's templates: role + task, step count and history, observation, actions, format."""
    parts = [env.role + (f" Your task is to: {task}." if task else "")]
    current = env.format_observation(observation)
    shown, count = history_lines(history, history_length)
    if count:
        parts.append(
            f"Prior to this step, you have already taken {len(history)} step(s). Below are the most recent "
            f"{count} observations and the corresponding actions you took: {shown}"
        )
        parts.append(f"You are now at step {len(history) + 1} and your current observation is: {current}")
    else:
        parts.append(f"Your current observation is: {current}")
    if numbered and observation.admissible_actions:
        parts.append(f"Your admissible actions of the current situation are:\n{numbered_actions.listing(observation.admissible_actions)}")
    elif show_actions and observation.admissible_actions:
        parts.append(
            f"Your admissible actions of the current situation are: [{env.format_admissible(observation.admissible_actions)}]."
        )
    choose = " Give the number of the action you choose." if numbered and observation.admissible_actions else ""
    parts.append("\nNow it's your turn to take an action.\n" + FORMAT_INSTRUCTIONS[output_format] + choose)
    return "\n".join(parts)


def compact_prompt(env: Env, observation: Observation, task: str | None, history, history_length: int, output_format: str, show_actions: bool, numbered: bool = False) -> str:
    """Task, history and observation only: for tiny models, where every prompt token costs
    attention time and a constrained decoder already enforces the format and the actions."""
    parts = [task] if task else []
    shown, count = history_lines(history, history_length)
    if count:
        parts.append(shown)
    parts.append(env.format_observation(observation))
    if numbered and observation.admissible_actions:
        parts.append("Actions:\n" + numbered_actions.listing(observation.admissible_actions))
    elif show_actions and observation.admissible_actions:
        parts.append("Actions: " + ", ".join(observation.admissible_actions))
    return "\n".join(parts)


PROMPT_STYLES = {"verl": verl_prompt, "compact": compact_prompt}


def build_prompt(
    env: Env,
    observation: Observation,
    task: str | None,
    history: Sequence[tuple[str, str]],
    history_length: int,
    output_format: str,
    style: str = "verl",
    show_actions: bool = True,
    numbered: bool = False,
) -> str:
    """The user message for one step (the model's chat template wraps it). ``numbered`` lists
    the admissible actions as 1..N (always shown: the reply is one of those numbers)."""
    return PROMPT_STYLES[style](env, observation, task, history, history_length, output_format, show_actions, numbered)



def verl_turn(env: Env, observation: Observation, show_actions: bool, numbered: bool) -> str:
    """verl-agent's wording for a later turn: the current observation, then the actions."""
    parts = [f"Your current observation is: {env.format_observation(observation)}"]
    actions = observation.admissible_actions
    if numbered and actions:
        parts.append(f"Your admissible actions are:\n{numbered_actions.listing(actions)}\nGive the number of the action you choose.")
    elif show_actions and actions:
        parts.append(f"Your admissible actions are: [{env.format_admissible(actions)}].")
    return "\n".join(parts)


def compact_turn(env: Env, observation: Observation, show_actions: bool, numbered: bool) -> str:
    """The observation and the actions, nothing else (tiny models)."""
    parts = [env.format_observation(observation)]
    actions = observation.admissible_actions
    if numbered and actions:
        parts.append("Actions:\n" + numbered_actions.listing(actions))
    elif show_actions and actions:
        parts.append("Actions: " + ", ".join(actions))
    return "\n".join(parts)


TURN_STYLES = {"verl": verl_turn, "compact": compact_turn}


def turn_prompt(env: Env, observation: Observation, style: str = "verl", show_actions: bool = True, numbered: bool = False) -> str:
    """A later turn's user message in trajectory mode (``rollout.context=trajectory``): the new
    observation and its admissible actions only — the role, task and format instruction were in
    the first turn's message (``build_prompt`` without history), and every earlier observation
    and reply is still in the context."""
    return TURN_STYLES[style](env, observation, show_actions, numbered)
