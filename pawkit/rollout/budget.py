"""Fitting a step's prompt into ``rollout.max_prompt_tokens`` without ever losing its head.

The head — the chat template's header, the env's role and the task sentence — is what makes
the episode solvable, so it always survives. Over budget, the oldest history entries go first
(down to none), then the current observation is shortened in its middle, with a visible
marker saying how much was cut. A budget too small for the head itself is a user error.
(Cutting token ids from the left, as before, dropped the header and the task first.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from pawkit.protocol import Observation, UsageError

CUT_MARKER = " [... {n} characters cut ...] "


class PromptBudgetError(UsageError):
    """``rollout.max_prompt_tokens`` cannot hold the prompt's head; the message says how many it needs."""


@dataclass
class FittedPrompt:
    ids: list[int]
    history_shown: int  # history entries kept (≤ the configured history_length)
    cut_characters: int  # characters removed from the middle of the current observation

    @property
    def truncated(self) -> bool:
        return self.cut_characters > 0


def cut_middle(text: str, keep: int) -> str:
    """``text`` with all but ``keep`` characters removed from its middle, marked."""
    if keep >= len(text):
        return text
    head = (keep + 1) // 2
    tail = keep - head
    return text[:head] + CUT_MARKER.format(n=len(text) - keep) + (text[len(text) - tail :] if tail else "")


def fit_prompt(
    render: Callable[[int, Observation], str],
    encode: Callable[[str], list[int]],
    observation: Observation,
    history_length: int,
    history_available: int,
    budget: int,
) -> FittedPrompt:
    """The longest prompt within ``budget`` tokens.

    ``render(h, obs)`` builds the user message with the last ``h`` history entries;
    ``encode`` turns it into prompt ids (chat template included). Returns the ids and what was
    dropped. Raises ``PromptBudgetError`` when even no history and an emptied observation do not
    fit (the head, or the admissible-action list, is longer than the budget).
    """
    shown = min(history_length, history_available)
    ids = encode(render(shown, observation))
    while len(ids) > budget and shown > 0:
        shown -= 1
        ids = encode(render(shown, observation))
    if len(ids) <= budget:
        return FittedPrompt(ids, shown, 0)

    def attempt(keep: int) -> list[int]:
        return encode(render(0, observation.model_copy(update={"text": cut_middle(observation.text, keep)})))

    smallest = attempt(0)
    if len(smallest) > budget:
        raise PromptBudgetError(
            f"rollout.max_prompt_tokens={budget} cannot hold this prompt's head: it needs {len(smallest)} tokens "
            "with no history and an empty observation (template, role, task and admissible actions); "
            "raise rollout.max_prompt_tokens"
        )
    low, high, best = 0, len(observation.text), smallest  # most characters kept that still fit
    while low < high:
        mid = (low + high + 1) // 2
        candidate = attempt(mid)
        if len(candidate) <= budget:
            low, best = mid, candidate
        else:
            high = mid - 1
    return FittedPrompt(best, 0, len(observation.text) - low)
