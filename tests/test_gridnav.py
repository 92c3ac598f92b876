"""gridnav: exact observations, walls, turn limit, expert, disjoint splits."""

import random

import pytest

from pawkit import plugins
from pawkit.protocol import Task
from pawkit_adapters.gridnav import GridNavEnv, relative_goal


def crafted(start, goal) -> Task:
    return Task(id="crafted", info={"start": list(start), "goal": list(goal)})


def test_registered_with_spec_attributes():
    env = plugins.get("env", "gridnav")()
    assert (env.name, env.size, env.max_steps, env.max_return, env.splits) == ("gridnav", 3, 6, 1.0, ("train", "test"))


def test_exact_observations_and_success():
    env = GridNavEnv()
    obs = env.reset(task=crafted((2, 0), (1, 2)))
    assert obs.text == "The goal is 1 step north and 2 steps east of you."
    assert obs.admissible_actions == ["north", "south", "east", "west"]
    r = env.step("east")
    assert (r.observation.text, r.reward, r.done, r.success) == ("The goal is 1 step north and 1 step east of you.", 0.0, False, False)
    r = env.step("north")
    assert r.observation.text == "The goal is 1 step east of you."
    r = env.step("east")
    assert (r.observation.text, r.reward, r.done, r.success) == ("You reached the goal!", 1.0, True, True)


def test_relative_goal_wording():
    assert relative_goal((0, 0), (2, 0)) == "The goal is 2 steps south of you."
    assert relative_goal((1, 2), (1, 0)) == "The goal is 2 steps west of you."


def test_wall_bump_and_invalid_command_keep_position():
    env = GridNavEnv()
    env.reset(task=crafted((0, 0), (2, 2)))
    r = env.step("north")
    assert r.observation.text == "You bumped into a wall and stayed in place. The goal is 2 steps south and 2 steps east of you."
    assert r.info["invalid_action"] is False
    r = env.step("jump")
    assert r.observation.text == "'jump' is not a move; choose north, south, east or west. The goal is 2 steps south and 2 steps east of you."
    assert r.info["invalid_action"] is True


def test_turn_limit_ends_episode_without_reward():
    env = GridNavEnv()
    env.reset(task=crafted((0, 0), (2, 2)))
    results = [env.step("west") for _ in range(6)]
    assert [r.done for r in results] == [False] * 5 + [True]
    assert results[-1].observation.text.endswith("You are out of turns.")
    assert (results[-1].reward, results[-1].success) == (0.0, False)
    with pytest.raises(RuntimeError):
        env.step("east")


def test_slack_shortens_the_turn_budget():
    env = GridNavEnv(slack=0)
    env.reset(task=crafted((0, 0), (0, 1)))
    r = env.step("south")
    assert (r.done, r.success) == (True, False)


@pytest.mark.parametrize("split", ["train", "test"])
def test_expert_succeeds_on_every_task(split):
    env = GridNavEnv()
    for task in env.tasks(split):
        env.reset(task=task)
        for _ in range(env.max_steps):
            r = env.step(env.expert_action())
            if r.done:
                break
        assert r.success, task.id


def test_splits_disjoint_and_cover_all_pairs():
    env = GridNavEnv()
    train = {t.id.split("-", 1)[1] for t in env.tasks("train")}
    test = {t.id.split("-", 1)[1] for t in env.tasks("test")}
    assert (len(train), len(test), train & test) == (54, 18, set())
    with pytest.raises(ValueError, match="unknown split 'valid'"):
        env.tasks("valid")


def test_same_task_same_episode_and_seed_reset():
    env = GridNavEnv()
    task = env.tasks("test")[3]
    assert env.reset(task=task) == env.reset(task=task)
    assert env.reset(seed=5) == env.reset(seed=5)


def test_random_policy_success_rate_is_fixed_for_a_seed():
    env = GridNavEnv()
    rng = random.Random(0)
    wins = 0
    tasks = env.tasks("train")
    for task in tasks * 20:
        obs = env.reset(task=task)
        while True:
            r = env.step(env.random_action(obs, rng))
            obs = r.observation
            if r.done:
                wins += r.success
                break
    # Random play succeeds about a third of the time with 6 turns (0.346 over 10,800 episodes).
    assert (wins, len(tasks) * 20) == (367, 1080)
