from pawkit.rollout.parsing import parse_action, render_action
from pawkit.rollout.prompts import build_prompt, history_lines
from pawkit.protocol import Env, Observation, StepResult


def test_think_action_valid():
    a = parse_action("<think>go</think><action> Go To Cabinet 1 </action>", "think_action")
    assert (a.command, a.valid, a.parse_error) == ("go to cabinet 1", True, None)


def test_missing_action_tags_falls_back_to_tail():
    reply = "I would like to open the fridge please thank you!!"
    a = parse_action(reply, "think_action", fallback_chars=20)
    assert a.command == reply.lower()[-20:]
    assert a.valid is False and a.parse_error == "missing <action> tags"


def test_missing_think_still_executes_action():
    a = parse_action("<action>look</action>", "think_action")
    assert (a.command, a.valid, a.parse_error) == ("look", False, "missing <think> tags")


def test_cjk_and_multiple_action_blocks_are_invalid():
    a = parse_action("<think>想</think><action>a</action>", "think_action")
    assert (a.command, a.valid, a.parse_error) == ("a", False, "reply contains CJK characters")
    b = parse_action("<think>x</think><action>a</action><action>b</action>", "think_action")
    assert (b.valid, b.parse_error) == (False, "more than one <action> block")


def test_closing_before_opening_and_empty_blocks_are_invalid():
    a = parse_action("<think></think></action> x <action>", "think_action")
    assert (a.command, a.valid, a.parse_error) == ("", False, "</action> before <action>")
    b = parse_action("<think></think><action>  </action>", "think_action")
    assert (b.command, b.valid, b.parse_error) == ("", False, "empty <action> block")


def test_action_and_plain_formats():
    assert parse_action("<action>north</action>", "action").valid is True
    assert parse_action("  North ", "plain").command == "north"
    assert parse_action("", "plain").valid is False
    assert render_action("north", "action") == "<action>north</action>"
    assert render_action("north", "plain") == "north"


def test_garbage_replies_never_raise():
    for junk in ["", "\x00\xff", "<action>" * 1000, "a" * 100_000, "\ud800 bad surrogate"]:
        action = parse_action(junk, "think_action")
        assert action.valid is False


class _Env(Env):
    name = "t"

    def reset(self, task=None, seed=None):
        return Observation(text="start")

    def step(self, command):
        return StepResult(observation=Observation(text="x"))


def test_history_lines_format():
    text, count = history_lines([("o1", "a1"), ("o2", "a2"), ("o3", "a3")], 2)
    assert count == 2
    assert text == "[Observation 2: 'o2', Action 2: 'a2']\n[Observation 3: 'o3', Action 3: 'a3']"


def test_prompt_layout():
    obs = Observation(text="You see a door.", admissible_actions=["open door", "look"])
    first = build_prompt(_Env(), obs, "leave the room", [], 2, "action")
    assert first.splitlines()[:3] == [
        "You are an expert agent operating in a text environment. Your task is to: leave the room.",
        "Your current observation is: You see a door.",
        "Your admissible actions of the current situation are: ['open door'\n 'look'].".splitlines()[0],
    ]
    later = build_prompt(_Env(), obs, None, [("o1", "look")], 2, "action")
    assert "Prior to this step, you have already taken 1 step(s)." in later
    assert "You are now at step 2 and your current observation is: You see a door." in later
