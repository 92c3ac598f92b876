"""Numbered actions: the prompt lists admissible actions as 1..N and a reply names one by number."""

import torch

from pawkit import numbered, plugins
from pawkit.config import load_config
from pawkit.envpool import make_env_pool
from pawkit.models import load_model
from pawkit.parsing import parse_action
from pawkit.prompts import build_prompt
from pawkit.protocol import Observation
from pawkit.rollout import Generator, run_rollout

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


def test_constrained_numbered_rollout_replies_with_numbers_and_plays_admissible_actions():
    cfg = load_config("gridnav", overrides=["rollout.numbered_actions=true"])
    model, tokenizer = load_model(cfg.model)
    env = plugins.get("env", "gridnav")()
    tasks = list(env.tasks("train"))[:4]
    torch.manual_seed(0)
    with make_env_pool("gridnav", {}, 16) as pool:
        batch = run_rollout(env, pool, Generator(model, tokenizer, cfg.rollout), tasks, 4, cfg.rollout, 1.0)
    steps = [t for e in batch.episodes for t in e.transitions]
    assert len(steps) >= 16
    for t in steps:
        options = numbered.choices(t.observation.admissible_actions)
        assert t.action.valid and t.action.raw.strip() == str(options.index(t.action.command) + 1)
    for s in batch.samples:  # the trainer restricts log-probs to the same digit choices
        assert all(tok in allowed for tok, allowed in zip(s.response_ids, s.allowed))
        assert tokenizer.decode(s.response_ids, skip_special_tokens=True).strip().isdigit()
