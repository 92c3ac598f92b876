"""``pawkit preview`` (issue #19, item 6): each step shows exactly the prompt ids the rollout
builds, the parsed action, the GiGPO anchor and the WM target PaW would train on."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from pawkit import plugins
from pawkit.cli import main
from pawkit.config import load_config
from pawkit.hookspecs import hookimpl
from pawkit.protocol import Env, Observation, StepResult
from pawkit.rollout.envpool import make_env_pool
from pawkit.rollout.generate import Generator
from pawkit.rollout.play import expert_policy, play_episode, random_policy
from pawkit.rollout.prompts import build_prompt
from pawkit.rollout.run import run_rollout
from pawkit.train.models import load_model
from pawkit.train.paw import wm_target_ids
from pawkit.train.models import load_tokenizer
from pawkit.train.preview import pick_task


class StatusBarEnv(Env):
    """No expert; its observation carries a moves counter in brackets (rich markup lookalike)."""

    name = "statusbar"
    max_steps = 3

    def reset(self, task=None, seed=None):
        self.moves = 0
        return Observation(text="[moves: 0] A room.", admissible_actions=["wait", "look"])

    def step(self, command):
        self.moves += 1
        obs = Observation(text=f"[moves: {self.moves}] A room.", admissible_actions=["wait", "look"])
        return StepResult(observation=obs, reward=0.0, done=self.moves >= 3)


@hookimpl
def register_envs(register):
    register("statusbar", StatusBarEnv, description="test-only env without an expert, with a moves counter")


@pytest.fixture(scope="module", autouse=True)
def _plugin():
    name = plugins.register_plugin(sys.modules[__name__], name="preview-test-plugin")
    yield
    plugins.unregister_plugin(name)


def preview_json(capsys, *args: str) -> list[dict]:
    rc = main(["preview", "--json", *args])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return [json.loads(line) for line in out.splitlines()]


def one_line_exit_2(capsys, args: list[str], *needles: str) -> str:
    rc = main(args)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("error: ") and err.strip().count("\n") == 0 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


def expected_steps(env, config, policy, seed: int, steps: int):
    """Each step's prompt built directly (build_prompt + Generator.encode, as the rollout does
    when nothing has to be cut), plus the transitions of the same scripted episode."""
    tokenizer = load_tokenizer(config.model)
    generator = Generator(None, tokenizer, config.rollout)
    task = pick_task(env, config.env.train_split, seed)
    episode = play_episode(env, policy, task, task.seed, config.rollout.max_steps or env.max_steps)
    cfg, history, out = config.rollout, [], []
    for t in episode.transitions[:steps]:
        text = build_prompt(env, t.observation, t.observation.task or task.description, history,
                            min(cfg.history_length, len(history)), cfg.output_format, cfg.prompt_style,
                            show_actions=not cfg.constrained, numbered=cfg.numbered_actions)
        ids = generator.encode(text)
        wm = wm_target_ids(tokenizer, env.format_observation(t.next_observation), config.paw)
        out.append((tokenizer.decode(ids), len(ids), tokenizer.decode(wm), len(wm), t))
        history.append((env.format_observation(t.observation), t.action.command))
    return tokenizer, task, out


def far_seed(env, split: str) -> int:
    """A seed whose task (as pick_task chooses it) is at least 3 moves from its goal."""
    tasks = list(env.tasks(split))
    return next(i for i, t in enumerate(tasks) if sum(abs(a - b) for a, b in zip(t.info["start"], t.info["goal"])) >= 3)


def test_gridnav_preview_shows_the_rollouts_own_prompts_anchor_and_wm_target(capsys):
    overrides = ["rollout.history_length=2", "rollout.chat_template=true", "model.name=tiny"]
    config = load_config("gridnav", None, overrides)
    env = plugins.get("env", "gridnav")()
    seed = far_seed(env, config.env.train_split)
    steps = preview_json(capsys, "--env", "gridnav", "--policy", "expert", "--steps", "3", "--seed", str(seed), *overrides)
    tokenizer, task, expected = expected_steps(plugins.get("env", "gridnav")(), config, expert_policy, seed, 3)
    assert len(steps) == len(expected) == 3
    for k, (step, (prompt, n_prompt, wm_text, n_wm, t)) in enumerate(zip(steps, expected)):
        assert step["step"] == k
        assert step["prompt"] == prompt and step["prompt_tokens"] == n_prompt
        assert step["prompt"].startswith("<|im_start|>user\n") and step["prompt"].endswith("<|im_start|>assistant\n")
        assert (step["prompt_shortened"], step["history_shown"], step["cut_characters"]) == (False, min(k, 2), 0)
        assert step["admissible_actions"] == ["north", "south", "east", "west"]
        assert (step["constrained"], step["numbered"]) == (True, False)
        assert step["reply"] == step["action"] == t.action.command  # output_format plain: the bare command
        assert step["reply_tokens"] == len(t.action.command) + 1  # byte tokenizer, plus EOS
        assert (step["invalid"], step["parse_error"]) == (False, None)
        assert step["anchor"] == t.observation.text
        assert step["wm_target"] == wm_text and step["wm_target_tokens"] == n_wm
        assert step["wm_target"] == config.paw.delimiter + t.next_observation.text
        assert step["wm_target_cut"] is False and step["paw_enabled"] is True  # PaW is on by default (#24)
        assert (step["reward"], step["done"], step["success"]) == (t.reward, t.done, t.done and t.reward > 0)

    # the first prompt is byte for byte the one run_rollout gives the model
    torch.manual_seed(0)
    model, model_tokenizer = load_model(config.model)
    with make_env_pool("gridnav", {}, 1) as pool:
        batch = run_rollout(env, pool, Generator(model, model_tokenizer, config.rollout), [task], 1, config.rollout, 1.0, 1)
    assert tokenizer.decode(batch.samples[0].prompt_ids) == steps[0]["prompt"]
    assert len(batch.samples[0].prompt_ids) == steps[0]["prompt_tokens"]
    assert batch.samples[0].anchor == steps[0]["anchor"]


def test_counter_preview_numbered_replies_cut_targets_and_shortened_prompts(capsys):
    if "example/counter" not in plugins.registry("env").names():
        pytest.skip("the example adapter is not installed")
    overrides = ["rollout.numbered_actions=true", "rollout.output_format=action", "rollout.history_length=1",
                 "paw.max_obs_tokens=24", "paw.enabled=true", "model.name=tiny",
                 "rollout.prompt_style=verl", "rollout.chat_template=true", "rollout.constrained=false"]
    config = load_config("example/counter", None, overrides)
    env = plugins.get("env", "example/counter")()
    seed = 4  # train targets are 1, 3, 5, 7, 9: target 9, five moves or more
    steps = preview_json(capsys, "--env", "example/counter", "--policy", "random", "--steps", "4", "--seed", str(seed), *overrides)
    _, _, expected = expected_steps(env, config, random_policy(seed), seed, 4)
    assert len(steps) == len(expected) == 4
    for step, (prompt, n_prompt, wm_text, n_wm, t) in zip(steps, expected):
        assert step["prompt"] == prompt and step["prompt_tokens"] == n_prompt
        assert "Your admissible actions of the current situation are:\n1: add 1\n2: add 2" in step["prompt"]
        number = ["add 1", "add 2"].index(t.action.command) + 1
        assert step["reply"] == f"<action>{number}</action>" and step["action"] == t.action.command
        assert (step["numbered"], step["constrained"], step["invalid"]) == (True, False, False)
        assert step["anchor"] == t.observation.text  # the adapter's "(target 9)" is not in the anchor...
        assert step["wm_target"] == wm_text and step["wm_target_tokens"] == n_wm == 24  # ...but is in the target
        assert step["wm_target"] == (config.paw.delimiter + env.format_observation(t.next_observation))[:24]
        assert step["wm_target_cut"] is True and step["paw_enabled"] is True

    budget = steps[1]["prompt_tokens"] - 1  # one token short of the second prompt: its history goes
    short = preview_json(capsys, "--env", "example/counter", "--policy", "random", "--steps", "2", "--seed", str(seed),
                         *overrides, f"rollout.max_prompt_tokens={budget}")
    assert [s["prompt_shortened"] for s in short] == [False, True]
    assert [s["history_shown"] for s in short] == [0, 0]
    assert short[1]["prompt_tokens"] <= budget and short[0]["prompt"] == steps[0]["prompt"]


def test_text_output_has_a_section_per_step_and_keeps_bracketed_env_text(capsys):
    assert main(["preview", "--env", "statusbar", "--policy", "random", "--steps", "2", "model.name=tiny"]) == 0
    out = capsys.readouterr().out
    rules = [line.strip("─ ") for line in out.splitlines() if line.startswith("─")]
    assert rules == ["step 1", "step 2"]
    for header in ("prompt: ", "admissible actions (2)", "reply and parsed action", "GiGPO anchor", "WM target"):
        assert out.count(header) == 2, header
    assert "[moves: 0] A room." in out and "[moves: 2] A room." in out  # not eaten as rich markup


def test_no_expert_unknown_env_and_bad_flags_are_one_line_exit_2(capsys):
    one_line_exit_2(capsys, ["preview", "--env", "statusbar", "--policy", "expert"], "no expert policy", "--policy random")
    one_line_exit_2(capsys, ["preview", "--env", "nope"], "unknown env 'nope'")
    one_line_exit_2(capsys, ["preview", "--env", "gridnav", "--policy", "human"], "unknown policy 'human'")
    one_line_exit_2(capsys, ["preview", "--env", "gridnav", "--steps", "0"], "--steps")
    one_line_exit_2(capsys, ["preview", "--env", "gridnav", "model.name=./no/such/model"], "model path does not exist")
    steps = preview_json(capsys, "--env", "statusbar", "--policy", "random", "--steps", "5", "model.name=tiny")
    assert len(steps) == 3  # the episode ends after 3 moves
    assert [s["anchor"] for s in steps] == [f"[moves: {k}] A room." for k in range(3)]
