"""Numbered actions: the prompt lists admissible actions as 1..N and a reply names one by number.

The rollout with numbered actions is tested beside the plain constrained one in test_trainer.py.
"""

from pawkit import plugins
from pawkit.rollout import numbered
from pawkit.rollout.parsing import parse_action
from pawkit.rollout.prompts import build_prompt
from pawkit.protocol import Observation

ACTIONS = ["search[red shoes]", "click[b01]", "click[buy now]", "click[b01]"]  # a repeat is listed once


def test_a_number_names_its_action_and_anything_else_is_invalid():
    assert numbered.labels(ACTIONS) == ["1", "2", "3"]
    assert numbered.listing(ACTIONS) == "1: search[red shoes]\n2: click[b01]\n3: click[buy now]"
    third = numbered.resolve(parse_action(" 3 ", "plain"), ACTIONS)
    assert (third.raw, third.command, third.valid) == (" 3 ", "click[buy now]", True)
    assert numbered.resolve(parse_action("<action>1</action>", "action"), ACTIONS).command == "search[red shoes]"
    for reply in ("0", "4", "buy", "2.5", "-1"):
        bad = numbered.resolve(parse_action(reply, "plain"), ACTIONS)
        assert (bad.command, bad.valid, bad.parse_error) == (reply, False, "not an action number from 1 to 3"), reply
    empty = numbered.resolve(parse_action("", "plain"), ACTIONS)
    assert (empty.valid, empty.parse_error) == (False, "empty reply")  # the parser's verdict stands
    assert numbered.resolve(parse_action("look", "plain"), []).command == "look"  # no list: nothing to resolve


def test_prompts_list_the_actions_by_number_even_when_decoding_is_constrained():
    env = plugins.get("env", "gridnav")()
    obs = Observation(text="You are at (0, 0).", admissible_actions=["go north", "go east"])
    for style in ("verl", "compact"):
        text = build_prompt(env, obs, "reach the goal", [], 0, "plain", style, show_actions=False, numbered=True)
        assert "1: go north\n2: go east" in text, text
        plain = build_prompt(env, obs, "reach the goal", [], 0, "plain", style, show_actions=False)
        assert "go north" not in plain

