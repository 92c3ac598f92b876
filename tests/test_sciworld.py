"""ScienceWorld on the real simulator: expert paths, invalid commands, splits, lazy valid
actions, and no leftover JVMs. Skipped where the package or Java is missing."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest

from pawkit.protocol import Task

scienceworld = pytest.importorskip("scienceworld")

from pawkit_adapters.sciworld import check  # noqa: E402
from pawkit_adapters.sciworld.env import SciWorldEnv  # noqa: E402
from pawkit_adapters.sciworld.tasks import task_names  # noqa: E402

pytestmark = pytest.mark.skipif(check() is not None, reason=f"sciworld cannot run here: {check()}")


def _children(pid: int) -> dict[int, str]:
    """All live descendants of ``pid``: {pid: command name} (from /proc; zombies excluded)."""
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)
                name = fields[0].split("(", 1)[1]
                state, ppid = fields[1].split()[:2]
            except (OSError, IndexError, ValueError):
                continue
            child = int(stat.parent.name)
            if int(ppid) == parent and state != "Z" and child not in found:
                found[child] = name
                frontier.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.fixture(scope="session", autouse=True)
def no_java_left():
    """After every sciworld test has run, no JVM started by this process may survive."""
    yield
    gc.collect()
    assert [name for name in _children(os.getpid()).values() if name == "java"] == []


@pytest.fixture(scope="module")
def env():
    env = SciWorldEnv()  # all 30 tasks: one JVM serves every test that resets it
    yield env
    env.close()


def _task(name: str, variation: int) -> Task:
    return Task(id=f"{name}-{variation}", info={"task_name": name, "variation": variation})


@pytest.mark.parametrize("name", ["find-non-living-thing", "lifespan-longest-lived", "chemistry-mix"])
def test_expert_completes_task(env, name):
    env.reset(_task(name, 0))
    total, result, steps = 0.0, None, 0
    while result is None or not result.done:
        result = env.step(env.expert_action())
        total += result.reward
        steps += 1
    assert result.success is True
    assert result.info["end"] == "completed"
    assert result.info["score"] == 100
    assert total == pytest.approx(1.0, abs=1e-9)
    assert 3 <= steps <= len(env._gold) < env.max_steps  # the gold path may end with moves past completion


def test_invalid_command_changes_nothing(env):
    first = env.reset(_task("boil", 0))
    moves = env.engine.server.getNumMoves()
    result = env.step("xyzzy the teapot")
    assert result.observation.text == "No known action matches that input."
    assert (result.reward, result.done, result.info["invalid_action"]) == (0.0, False, True)
    assert env.engine.server.getNumMoves() == moves
    assert env.step("look around").observation.text == first.text


def test_ambiguous_command_offers_numbers_and_wrong_focus_fails(env):
    env.reset(_task("boil", 0))
    result = env.step("focus on door")
    assert result.observation.text.startswith("Ambiguous request")
    assert result.info["ambiguous"] is True and result.info["invalid_action"] is False
    assert env.valid_actions() == ["0", "1", "2", "3", "4", "5"]  # the hallway has six doors
    result = env.step("0")  # focusing on a door is the wrong focus: score -100
    assert (result.done, result.success, result.reward, result.info["score"], result.info["end"]) == (
        True, False, 0.0, -100, "failed")
    with pytest.raises(RuntimeError, match="call reset"):
        env.step("look around")


def test_variation_splits_are_disjoint(env):
    by_split = {split: env.tasks(split) for split in ("train", "dev", "test")}
    for name in env.task_names:
        sets = {s: {t.info["variation"] for t in tasks if t.info["task_name"] == name} for s, tasks in by_split.items()}
        assert sets["train"] and sets["dev"] and sets["test"], name
        assert not (sets["train"] & sets["dev"] or sets["train"] & sets["test"] or sets["dev"] & sets["test"]), name
    boil = {s: sorted(t.info["variation"] for t in tasks if t.info["task_name"] == "boil") for s, tasks in by_split.items()}
    assert boil == {"train": list(range(0, 14)), "dev": list(range(14, 21)), "test": list(range(21, 30))}
    train = by_split["train"]
    assert [t.info["task_name"] for t in train[:30]] == env.task_names  # consecutive tasks cycle over the 30
    assert len({t.id for t in train}) == len(train)


def test_lazy_valid_actions_equal_the_packages_own(env):
    from scienceworld import ScienceWorldEnv

    package = ScienceWorldEnv("", envStepLimit=1000)
    java = package._gateway.java_process
    try:
        env.reset(_task("boil", 0))
        gold = env.expert_action
        package.load("boil", 0, "easy")
        _, info = package.reset()
        for _ in range(6):
            assert set(env.valid_actions()) == set(info["valid"])
            assert len(env.valid_actions()) == len(info["valid"])
            command = gold()
            env.step(command)
            _, _, _, info = package.step(command)
    finally:
        package.close()
        java.wait(10)
    assert not _alive(java.pid)


def test_constructor_starts_nothing_and_prompts_are_compact(env):
    cheap = SciWorldEnv("boil")
    assert cheap._engine is None and cheap.name == "sciworld/boil"
    assert "connect OBJ to OBJ" not in cheap.role and "pour OBJ in OBJ" in cheap.role
    assert "connect OBJ to OBJ" in SciWorldEnv("power-component").role
    observation = env.reset(_task("boil", 0))
    assert sorted(cheap._templates()) == sorted(env.engine.templates())  # the role names exactly the engine's templates
    assert observation.admissible_actions is None
    shown = env.format_observation(observation)
    assert shown.startswith("This room is called the hallway.")
    assert "Objects you can refer to: " in shown and "kitchen" in observation.info["objects"]
    actions = env.valid_actions()
    compact = env.format_admissible(actions)
    assert compact.startswith(f"{len(actions)} valid commands built from the templates ")
    assert len(compact) < len("\n ".join(f"'{a}'" for a in actions)) / 3
    assert observation.task.startswith("boil water")


def test_valid_actions_option_fills_admissible(env):
    listing = SciWorldEnv("boil", valid_actions=True, objects=False)
    try:
        observation = listing.reset(_task("boil", 0))
        assert observation.admissible_actions == listing.valid_actions()
        assert "objects" not in observation.info
        assert "close door to kitchen" in observation.admissible_actions  # "easy" opens every door
    finally:
        listing.close()


def test_bad_options_fail_with_the_fix():
    with pytest.raises(ValueError, match="unknown ScienceWorld task 'boiling'; choose from boil, "):
        SciWorldEnv("boiling")
    with pytest.raises(ValueError, match="unknown simplification 'hard'"):
        SciWorldEnv(simplification="hard")


def test_without_java_check_and_reset_say_what_to_install(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert check() == "needs java"
    env = SciWorldEnv("boil")
    with pytest.raises(RuntimeError, match=r"^sciworld needs java: apt-get install openjdk-17-jre-headless$"):
        env.reset()


def test_close_and_garbage_collection_stop_the_jvm():
    env = SciWorldEnv("find-plant")
    env.reset(_task("find-plant", 0))
    first = env.engine.process
    env.close()
    assert first.poll() is not None
    env.close()  # twice is fine
    env.reset(_task("find-plant", 0))  # a closed env starts a fresh JVM on reset
    second = env.engine.process
    assert second.pid != first.pid
    del env
    gc.collect()
    assert second.poll() is not None


def test_two_worker_pool_runs_the_expert_and_leaves_no_jvm():
    from pawkit.rollout.envpool import make_env_pool

    pool = make_env_pool("sciworld/find-non-living-thing", {}, n_slots=2, num_workers=2, reset_timeout=120, step_timeout=120)
    jvms: list[int] = []
    try:
        tasks = [_task("find-non-living-thing", v) for v in (0, 1)]
        observations = pool.reset([(0, tasks[0], None), (1, tasks[1], None)])
        assert [o.info["variation"] for o in observations] == [0, 1]
        for worker in pool.pids:  # each worker runs its own JVM
            jvms += [pid for pid, name in _children(worker).items() if name == "java"]
        assert len(jvms) == 2
        live, successes = [0, 1], {}
        while live:
            commands = pool.expert_action(live)
            results = pool.step(list(zip(live, commands)))
            for slot, result in zip(list(live), results):
                assert not isinstance(result, BaseException), result
                if result.done:
                    successes[slot] = result.success
                    live.remove(slot)
        assert successes == {0: True, 1: True}
    finally:
        pool.close()
    assert [pid for pid in jvms if _alive(pid)] == []


# --- turn limits (issue #17): a limit below a task's gold path makes it unsolvable ------------


def _play_config(config_file: str, env_name: str, task: Task):
    """The expert on ``task`` under a shipped config's limits, as ``pawkit play`` runs it."""
    from pawkit import plugins
    from pawkit.config import load_config
    from pawkit.rollout.play import expert_policy, play_episode

    config = load_config(env_name, config_file)
    env = plugins.get("env", config.env.name)(**config.env.options)
    try:
        limit = config.rollout.max_steps or env.max_steps  # what pawkit play / the rollout use
        episode = play_episode(env, expert_policy, task, None, limit)
        return episode, limit
    finally:
        env.close()


def test_shipped_config_lets_the_expert_finish_boil():
    """The issue's example: configs/sciworld.yaml capped rollouts at 30 turns and boil variation 0's
    gold path is 39 commands, so `pawkit play --env sciworld/boil --policy expert` scored 0.0. Now
    the episode's own limit is 1.5x its gold path: 59 turns (the expert is done after 36: the gold
    path ends with moves past completion)."""
    episode, limit = _play_config("configs/sciworld.yaml", "sciworld/boil", _task("boil", 0))
    first = episode.transitions[0].observation.info
    assert (first["min_steps"], first["turn_limit"], limit) == (39, 59, 300)
    assert (episode.success, episode.return_, episode.end_reason, len(episode.transitions)) == (True, 1.0, "done", 36)


def test_a_fixed_limit_below_the_gold_path_warns_and_the_expert_fails():
    """What the old config did (30 turns for boil-0, which needs 39): the reset warns, and the
    episode ends unsolved at turn 30."""
    from pawkit_adapters.sciworld.env import TurnLimitWarning

    env = SciWorldEnv("boil", max_steps=30, gold_path=True)
    try:
        with pytest.warns(TurnLimitWarning, match="boil variation 0 needs 39 turns .* but the turn limit is 30"):
            observation = env.reset(_task("boil", 0))
        assert (observation.info["min_steps"], observation.info["turn_limit"]) == (39, 30)
        results = [env.step(env.expert_action()) for _ in range(30)]
    finally:
        env.close()
    assert [r.done for r in results] == [False] * 29 + [True]
    assert (results[-1].success, results[-1].info["end"], sum(r.reward for r in results) < 1.0) == (False, "max_steps", True)


def test_gold_multiple_must_not_undercut_the_gold_path():
    with pytest.raises(ValueError, match="gold_multiple must be >= 1"):
        SciWorldEnv("boil", gold_multiple=0.8)


@pytest.mark.slow
@pytest.mark.parametrize("name", task_names())
def test_shipped_config_lets_the_expert_finish_every_task(name):
    """configs/sciworld.yaml, every task: its first train variation and its first variation of
    the eval split (dev), each completed by the expert within the config's limits."""
    from pawkit.config import load_config

    eval_split = load_config("sciworld", "configs/sciworld.yaml").env.eval_split
    lister = SciWorldEnv(name)
    try:
        tasks = [lister.tasks("train")[0], lister.tasks(eval_split)[0]]
    finally:
        lister.close()
    for task in tasks:
        episode, limit = _play_config("configs/sciworld.yaml", "sciworld", task)
        info = episode.transitions[0].observation.info
        assert episode.success and episode.end_reason == "done", (task.id, info)
        assert len(episode.transitions) <= info["min_steps"] <= info["turn_limit"] <= limit, (task.id, info)
