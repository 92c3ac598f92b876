"""ALFWorld on the real engine: generated games, the expert, splits, official layout, pool."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

pytest.importorskip("alfworld", reason="needs alfworld (pip install pawkit[alfworld])")
pytest.importorskip("textworld", reason="needs alfworld (pip install pawkit[alfworld])")

from pawkit import plugins  # noqa: E402
from pawkit.rollout.envpool import make_env_pool  # noqa: E402
from pawkit_adapters import alfworld as plugin  # noqa: E402
from pawkit_adapters.alfworld import games as gamefiles  # noqa: E402
from pawkit_adapters.alfworld import scenes  # noqa: E402
from pawkit_adapters.alfworld.env import AlfworldEnv  # noqa: E402
from pawkit_adapters.alfworld.generate import generate  # noqa: E402


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """9 games (7 train, 1 valid_seen, 1 valid_unseen) over all six task types: ~40 s."""
    root = tmp_path_factory.mktemp("alfworld-data")
    report = generate(root, games=9, seed=5, show_progress=False)
    assert report.made == {"train": 7, "valid_seen": 1, "valid_unseen": 1}
    return root


def _trials(root: Path, split: str) -> list[Path]:
    return sorted(p.parent for p in (root / "json_2.1.1" / split).rglob("traj_data.json"))


def _scene(trial: Path) -> int:
    return int(trial.parent.name.rsplit("-", 1)[1])


def test_generated_layout_and_disjoint_splits(data):
    assert (data / "logic" / "alfred.pddl").exists() and (data / "logic" / "alfred.twl2").exists()
    ids = {split: {t.name for t in _trials(data, split)} for split in ("train", "valid_seen", "valid_unseen")}
    assert [len(ids[s]) for s in ("train", "valid_seen", "valid_unseen")] == [7, 1, 1]
    assert not (ids["train"] & ids["valid_seen"]) and not (ids["train"] | ids["valid_seen"]) & ids["valid_unseen"]
    train_scenes = {_scene(t) for t in _trials(data, "train") + _trials(data, "valid_seen")}
    unseen_scenes = {_scene(t) for t in _trials(data, "valid_unseen")}
    assert unseen_scenes <= set(scenes.UNSEEN_SCENES) and not train_scenes & set(scenes.UNSEEN_SCENES)
    for trial in _trials(data, "train"):
        game = json.loads((trial / "game.tw-pddl").read_text())
        traj = json.loads((trial / "traj_data.json").read_text())
        assert game["solvable"] is True and 0 < len(game["walkthrough"]) <= 50
        assert trial.parent.name.startswith(traj["task_type"] + "-" + traj["pddl_params"]["object_target"] + "-")
        assert (trial / "initial_state.pddl").read_text().lstrip().startswith("(define (problem")
    types = {json.loads((t / "traj_data.json").read_text())["task_type"] for t in _trials(data, "train")}
    assert types == set(scenes.TASK_TYPES.values())


def test_expert_solves_every_generated_game(data):
    env = AlfworldEnv(data_dir=str(data))
    solved, by_type = 0, {}
    tasks = [t for split in env.splits for t in env.tasks(split)]
    assert len(tasks) == 9
    for task in tasks:
        env.reset(task)
        result = None
        for _ in range(env.max_steps):
            result = env.step(env.expert_action())
            if result.done:
                break
        solved += result.success
        by_type[task.info["task_type"]] = by_type.get(task.info["task_type"], 0) + result.success
        assert result.reward == (1.0 if result.success else 0.0)
    assert solved >= 0.9 * len(tasks), by_type
    env.close()


def test_playing_and_solving_a_game_leave_the_global_random_stream_alone(data):
    """ALFWorld's handcoded expert draws from the global ``random``; pawkit runs it on the game's own
    stream (games.expert_random), so the seeded global stream is where it was after a reset, every
    step and a solvability check, and the expert replays the checked walkthrough whatever the caller
    drew before. (Before: each reset re-seeded the global stream from the game's name.)"""
    env = AlfworldEnv(data_dir=str(data))
    task = env.tasks("train")[0]
    walkthrough = json.loads(Path(task.info["gamefile"]).read_text())["walkthrough"]
    plans = []
    for outer_seed in (0, 1):
        random.seed(outer_seed)
        expected = random.getstate()
        env.reset(task)
        assert random.getstate() == expected
        plan = []
        for _ in range(env.max_steps):
            plan.append(env.expert_action())
            result = env.step(plan[-1])
            assert random.getstate() == expected
            if result.done:
                break
        assert result.success
        plans.append(plan)
    assert plans[0] == plans[1] == walkthrough
    env.close()
    random.seed(2)
    expected = random.getstate()
    assert gamefiles.solve(gamefiles.make_tw_env(), Path(task.info["gamefile"]), 50) == (walkthrough, None)
    assert random.getstate() == expected


def test_observation_admissible_and_invalid_command(data):
    env = AlfworldEnv(data_dir=str(data), reward_scale=10)
    task = env.tasks("train")[0]
    obs = env.reset(task)
    traj = json.loads((Path(task.info["gamefile"]).parent / "traj_data.json").read_text())
    assert obs.text.startswith("-= Welcome to TextWorld, ALFRED! =-\n\nYou are in the middle of a room.")
    assert obs.task and obs.text.rstrip().endswith(f"Your task is to: {obs.task}.")
    assert traj["pddl_params"]["object_target"].lower() in obs.task
    assert "help" not in obs.admissible_actions and {"look", "inventory"} <= set(obs.admissible_actions)
    assert env.format_admissible(["look", "go to sidetable 1"]) == "'look'\n 'go to sidetable 1'"
    result = env.step("fly to the moon")
    assert result.observation.text == "Nothing happens."
    assert (result.reward, result.done, result.success, result.info) == (0.0, False, False, {"won": False, "invalid_action": True})
    assert result.observation.admissible_actions == obs.admissible_actions
    look = env.step("look")
    assert look.observation.text.startswith("You are in the middle of a room.") and "invalid_action" not in look.info
    env.close()


def test_task_type_filter_and_bad_options(data):
    env = AlfworldEnv(data_dir=str(data), task_types=[1])
    assert {t.info["task_type"] for t in env.tasks("train")} == {"pick_and_place_simple"}
    with pytest.raises(ValueError, match="task_types must be a non-empty subset of 1-6"):
        AlfworldEnv(task_types=[7])
    with pytest.raises(ValueError, match="has no json_2.1.1/"):
        AlfworldEnv(data_dir=str(data / "logic")).tasks("train")
    with pytest.raises(ValueError, match="unknown split 'test'"):
        env.tasks("test")


def test_official_layout_with_only_initial_state(data, tmp_path, monkeypatch):
    """A folder in the official layout whose trials lack game.tw-pddl: generated into the cache."""
    monkeypatch.setenv("PAWKIT_CACHE", str(tmp_path / "cache"))
    source = _trials(data, "train")[0]
    root = tmp_path / "official"
    split = root / "json_2.1.1" / "valid_seen"
    trial = split / source.parent.name / "trial_T0"
    trial.mkdir(parents=True)
    for name in ("traj_data.json", "initial_state.pddl"):
        shutil.copy(source / name, trial / name)
    (split / "pick_and_place_with_movable_recep-Apple-Bowl-Fridge-1" / "trial_T1").mkdir(parents=True)
    (split / "pick_and_place_with_movable_recep-Apple-Bowl-Fridge-1" / "trial_T1" / "traj_data.json").write_text("{}")
    lonely = split / "pick_and_place_simple-Mug-None-Desk-301" / "trial_T2"
    lonely.mkdir(parents=True)
    (lonely / "traj_data.json").write_text(json.dumps({"task_type": "pick_and_place_simple"}))

    env = AlfworldEnv(data_dir=str(root))
    tasks = env.tasks("valid_seen")
    assert [t.id for t in tasks] == [f"valid_seen/{source.parent.name}/trial_T0"]
    assert Path(tasks[0].info["gamefile"]).is_relative_to(tmp_path / "cache")
    assert env.skipped["valid_seen"] == [
        ("pick_and_place_simple-Mug-None-Desk-301/trial_T2", "no game.tw-pddl and no initial_state.pddl to generate it from"),
        ("pick_and_place_with_movable_recep-Apple-Bowl-Fridge-1/trial_T1",
         "movable receptacles and sliced objects are not supported by ALFWorld"),
    ]
    assert env.tasks("train") == [] and not (trial / "game.tw-pddl").exists()
    obs = env.reset(tasks[0])
    walkthrough = json.loads((source / "game.tw-pddl").read_text())["walkthrough"]
    results = [env.step(command) for command in walkthrough]
    assert [r.done for r in results] == [False] * (len(walkthrough) - 1) + [True] and results[-1].success
    assert AlfworldEnv(data_dir=str(root)).tasks("valid_seen")[0].info == tasks[0].info  # cached, not regenerated
    assert obs.admissible_actions


def test_pool_runs_alfworld_in_two_workers_and_shuts_down(data):
    env = AlfworldEnv(data_dir=str(data))
    tasks = list(env.tasks("train")[:2])
    with make_env_pool("alfworld", {"data_dir": str(data)}, 2, num_workers=2, step_timeout=120) as pool:
        pids = pool.pids
        observations = pool.reset([(i, t, None) for i, t in enumerate(tasks)])
        assert all(o.text.startswith("-= Welcome to TextWorld, ALFRED! =-") for o in observations)
        done = [False, False]
        for _ in range(50):
            live = [i for i in range(2) if not done[i]]
            if not live:
                break
            actions = pool.expert_action(live)
            for i, result in zip(live, pool.step(list(zip(live, actions)))):
                done[i] = result.done
                if result.done:
                    assert result.success
        assert done == [True, True]
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


def test_registered_with_install_check(monkeypatch):
    entry = plugins.registry("env").get("alfworld")
    assert entry.status() == "ready"
    monkeypatch.setattr(plugin.importlib.util, "find_spec", lambda name: None)
    assert entry.status() == "needs alfworld (pip install pawkit[alfworld])"
    with pytest.raises(RuntimeError, match=r"^needs alfworld \(pip install pawkit\[alfworld\]\)$"):
        entry.obj()


@pytest.mark.slow
def test_default_set_covers_all_task_types_and_expert_succeeds():
    """The default set (60 games, generated once into the cache): ~4-5 min the first time."""
    env = AlfworldEnv()
    types = {t.info["task_type"] for split in env.splits for t in env.tasks(split)}
    assert types == set(scenes.TASK_TYPES.values())
    wins = 0
    tasks = env.tasks("train")[:20]
    for task in tasks:
        env.reset(task)
        for _ in range(env.max_steps):
            result = env.step(env.expert_action())
            if result.done:
                break
        wins += result.success
    assert wins >= 0.9 * len(tasks)
