"""Reply → env command, per verl-agent's projection (prompts.md §4).

A malformed reply is never an exception: it becomes an invalid ``Action`` that is still
executed (the env decides what junk does) and penalised by the trainer.
"""

from __future__ import annotations

import re

from pawkit.protocol import Action

_CJK = re.compile(r"[\u4e00-\u9fff]")


def _tagged(raw: str, fallback_chars: int, require_think: bool) -> Action:
    lower = raw.lower()
    start, end = lower.find("<action>"), lower.find("</action>")
    if start < 0 or end < 0:
        return Action(raw=raw, command=lower[-fallback_chars:], valid=False, parse_error="missing <action> tags")
    if lower.count("<action>") > 1 or lower.count("</action>") > 1:
        return Action(raw=raw, command=lower[start + len("<action>") :][:fallback_chars], valid=False, parse_error="more than one <action> block")
    if end < start:
        return Action(raw=raw, command="", valid=False, parse_error="</action> before <action>")
    command = lower[start + len("<action>") : end].strip()
    if not command:
        return Action(raw=raw, command="", valid=False, parse_error="empty <action> block")
    if require_think and ("<think>" not in raw or "</think>" not in raw):
        return Action(raw=raw, command=command, valid=False, parse_error="missing <think> tags")
    if _CJK.search(raw):
        return Action(raw=raw, command=command, valid=False, parse_error="reply contains CJK characters")
    return Action(raw=raw, command=command)


def parse_action(raw: str, output_format: str, fallback_chars: int = 30) -> Action:
    if output_format == "plain":
        command = raw.strip().lower()
        return Action(raw=raw, command=command, valid=bool(command), parse_error=None if command else "empty reply")
    return _tagged(raw, fallback_chars, require_think=output_format == "think_action")


def render_action(command: str, output_format: str) -> str:
    """The exact reply text a constrained decoder may produce for ``command``."""
    return command if output_format == "plain" else f"<action>{command}</action>"
