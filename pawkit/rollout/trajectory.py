"""Trajectory mode (``rollout.context=trajectory``): one token sequence per episode, grown turn by turn.

The token-in/token-out multi-turn layout of SkyRL, verifiers and TRL's tool loop. An episode's
context starts as the first turn's prompt (``slot_prompt`` with no history: role, task,
observation, actions, format instruction, inside the chat template). Each turn the model
samples from the whole context; the sampled ids are appended exactly as sampled, then the env's
next observation as one *segment*::

    context | … | r_0 … r_{R-1} | between | m_0 … m_{M-1} | tail | r'_0 …
                  (action a_t)    turn      (user message:   generation
                                  markers    o_{t+1} as       prompt
                                             turn_prompt)

``between`` closes the reply's turn and opens the user's (ChatML: ``<|im_end|>\\n<|im_start|>user\\n``,
minus the ``<|im_end|>`` when the model sampled it as its stop token); ``tail`` is the
generation prompt (``<|im_end|>\\n<|im_start|>assistant\\n``). Both come from the tokenizer's own
chat template; without one (``rollout.chat_template=false``) ``between`` is a newline and
``tail`` is empty, as step mode's plain prompts. The message is tokenised once, as plain text
(special-token strings in env text never become special ids), and never re-tokenised.

PaW's world-model target of step t is the message ``m`` that follows its reply — tokens already
in the sequence, so PaW adds no tokens at all, only the LM head at those positions. The
observation after the last step (done, or out of turns) is appended the same way, as a target
only.

Context overflow: a segment is appended only while the context stays within
``rollout.max_prompt_tokens``. If the next observation does not fit, the episode ends there with
``end_reason`` ``context`` (counted in ``rollout/context_ended``); its last step has no WM
target. The head of an episode is never cut.
"""

from __future__ import annotations

from dataclasses import dataclass

from pawkit.config import RolloutConfig
from pawkit.protocol import Env, Observation
from pawkit.rollout.contract import _SURROGATE
from pawkit.rollout.prompts import turn_prompt
from pawkit.rollout.tokens import plain_ids

END_REASON = "context"  # Episode.end_reason of an episode whose next observation did not fit


@dataclass(frozen=True)
class TurnPieces:
    """The chat template's token ids around a later turn's user message."""

    between: list[int]  # after a reply, before the user message (its first id is dropped if the reply ends with it)
    tail: list[int]  # after the user message: the generation prompt


def turn_pieces(generator) -> TurnPieces:
    """``TurnPieces`` from ``generator``'s tokenizer and ``rollout.chat_template``: the template
    rendered for ``[user, assistant, user]`` with a generation prompt, cut at marker messages."""
    tok = generator.tokenizer
    if not (generator.cfg.chat_template and tok.chat_template):
        return TurnPieces(between=plain_ids(tok, "\n"), tail=[])
    marks = ["\x00PAWKIT-USER-1\x00", "\x00PAWKIT-REPLY\x00", "\x00PAWKIT-USER-2\x00"]
    rendered = tok.apply_chat_template(
        [{"role": "user", "content": marks[0]}, {"role": "assistant", "content": marks[1]}, {"role": "user", "content": marks[2]}],
        add_generation_prompt=True, tokenize=False,
    )
    between = rendered.split(marks[1], 1)[1].split(marks[2], 1)[0]
    tail = rendered.split(marks[2], 1)[1]
    ids = lambda text: list(tok(text, add_special_tokens=False)["input_ids"])  # noqa: E731 (template text: its special tokens are real)
    return TurnPieces(between=ids(between), tail=ids(tail))


@dataclass
class Segment:
    """Where step t's next observation sits in the context: ``context[wm_start : wm_start + wm_tokens]``."""

    wm_start: int
    wm_tokens: int


def append_turn(
    env: Env, cfg: RolloutConfig, tokenizer, pieces: TurnPieces, context: list[int], response: list[int],
    observation: Observation, done: bool,
) -> Segment | None:
    """Append the reply ``response`` (as sampled) to ``context``, then — if it fits in
    ``cfg.max_prompt_tokens`` — the segment of ``observation`` (the next one; without the
    generation prompt when ``done``). Returns where the message sits, or None when nothing was
    appended: no observation text, or it did not fit (the caller ends a running episode with
    ``END_REASON``). ``context`` is changed in place."""
    context.extend(response)
    if not observation.text:
        return None
    message = turn_prompt(env, observation, cfg.prompt_style, show_actions=not cfg.constrained, numbered=cfg.numbered_actions)
    between = pieces.between[1:] if response and pieces.between and response[-1] == pieces.between[0] else pieces.between
    message_ids = plain_ids(tokenizer, _SURROGATE.sub("\ufffd", message))
    segment = between + message_ids + ([] if done else pieces.tail)
    if len(context) + len(segment) > cfg.max_prompt_tokens:
        return None
    start = len(context) + len(between)
    context.extend(segment)
    return Segment(wm_start=start, wm_tokens=len(message_ids))
