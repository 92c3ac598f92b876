"""``run_rollout``'s per-slot bookkeeping: samples, episodes and env errors line up exactly."""

from __future__ import annotations

import pytest
import torch

from pawkit.config import load_config
from pawkit.protocol import Action, Episode, Observation, StepResult, Task
from pawkit.rollout.envpool import EnvPool, make_env_pool
from pawkit.rollout.generate import Generator, TurnLost
from pawkit.rollout.run import Slot, run_rollout
from pawkit.rollout.samples import RolloutBatch
from pawkit.train.models import load_model
from pawkit_adapters.gridnav import GridNavEnv


@pytest.fixture(scope="module")
def setup():
    cfg = load_config("gridnav")
    torch.manual_seed(0)
    model, tokenizer = load_model(cfg.model)
    return cfg, Generator(model, tokenizer, cfg.rollout)


def far_tasks(env: GridNavEnv, count: int) -> list[Task]:
    """Train tasks whose goal is at least 2 steps away: no episode can end on its first step."""
    far = [t for t in env.tasks("train")
           if sum(abs(a - b) for a, b in zip(t.info["start"], t.info["goal"])) >= 2]
    return far[:count]


def check_kept_episodes(env, batch: RolloutBatch, group_size: int, limit: int) -> None:
    """Kept episodes' samples come in slot order, then step order, and mirror their transitions."""
    kept = [e for e in batch.episodes if e.end_reason != "env_error"]
    assert len(batch.samples) == sum(len(e.transitions) for e in kept)
    runs: list[list] = []  # consecutive samples of one trajectory
    for s in batch.samples:
        if runs and runs[-1][0].traj_id == s.traj_id:
            runs[-1].append(s)
        else:
            runs.append([s])
    assert len({r[0].traj_id for r in runs}) == len(runs)  # a trajectory's samples are contiguous
    with_steps = [e for e in kept if e.transitions]
    assert len(runs) == len(with_steps)
    for episode, run in zip(with_steps, runs):
        assert [s.step_index for s in run] == list(range(len(episode.transitions)))
        assert {s.group_id for s in run} == {episode.group_id}
        assert [s.reward for s in run] == [t.reward for t in episode.transitions]
        assert [s.anchor for s in run] == [env.anchor(t.observation) for t in episode.transitions]
        assert [s.next_observation_text for s in run] == [
            env.format_observation(t.next_observation) for t in episode.transitions
        ]
        assert episode.return_ == sum(t.reward for t in episode.transitions)
        assert all(s.episode_return == episode.return_ for s in run)
        assert all(len(s.allowed) == len(s.response_ids) for s in run)
    for episode in kept:
        last = episode.transitions[-1]
        if episode.end_reason == "done":
            assert last.done and episode.success == (last.reward > 0)
            assert all(not t.done for t in episode.transitions[:-1])
        else:
            assert episode.end_reason == "max_steps" and len(episode.transitions) == limit
            assert not any(t.done for t in episode.transitions) and not episode.success
        for a, b in zip(episode.transitions, episode.transitions[1:]):
            assert a.next_observation == b.observation


@pytest.mark.parametrize("max_steps", [None, 2])
def test_gridnav_rollout_samples_mirror_the_episodes(setup, max_steps):
    cfg, generator = setup
    env = GridNavEnv()
    tasks, group_size = list(env.tasks("train"))[:3], 4
    torch.manual_seed(1)
    with make_env_pool("gridnav", {}, len(tasks) * group_size) as pool:
        batch = run_rollout(env, pool, generator, tasks, group_size, cfg.rollout, 1.0, max_steps)
    limit = max_steps or env.max_steps
    assert [e.task_id for e in batch.episodes] == [t.id for t in tasks for _ in range(group_size)]
    group_ids = [e.group_id for e in batch.episodes]
    assert len(set(group_ids)) == len(tasks)
    assert all(len(set(group_ids[g * group_size : (g + 1) * group_size])) == 1 for g in range(len(tasks)))
    assert batch.env_errors == 0 and batch.env_error_messages == [] and batch.truncated_prompts == 0
    assert all(e.end_reason in ("done", "max_steps") for e in batch.episodes)
    assert len({s.traj_id for s in batch.samples}) == len(batch.episodes)  # every episode took a step
    assert batch.generated_tokens == sum(len(s.response_ids) for s in batch.samples)
    assert batch.env_seconds > 0 and batch.generate_seconds > 0
    check_kept_episodes(env, batch, group_size, limit)
    if max_steps == 2:  # 1-step tasks may finish; everything else runs out of turns
        assert any(e.end_reason == "max_steps" for e in batch.episodes)


class LosesTurn(Generator):
    """The HF engine, except that its ``lose``-th ``sample`` call (0-based) raises ``TurnLost``
    the way a vLLM engine does after restarting a dead server."""

    def __init__(self, base: Generator, lose: int):
        super().__init__(base.model, base.tokenizer, base.cfg)
        self.lose, self.calls = lose, 0

    def sample(self, prompts, tries, temperature):
        self.calls += 1
        if self.calls - 1 == self.lose:
            raise TurnLost("the vLLM server died during this turn and was restarted")
        return super().sample(prompts, tries, temperature)


def test_an_engine_that_loses_a_turn_ends_exactly_those_episodes_as_env_errors(setup):
    """Turn 0 lost: every episode is an env error and nothing is sampled again; turn 1 lost:
    the episodes still running then are dropped, those that ended on turn 0 are kept."""
    cfg, generator = setup
    env = GridNavEnv()
    tasks, group_size = far_tasks(env, 2), 2
    with make_env_pool("gridnav", {}, len(tasks) * group_size) as pool:
        lost_first = LosesTurn(generator, lose=0)
        batch = run_rollout(env, pool, lost_first, tasks, group_size, cfg.rollout, 1.0, 3)
        assert lost_first.calls == 1  # the loop stops: no slot is left running
        assert batch.env_errors == batch.engine_lost == 4 and batch.samples == [] and batch.generated_tokens == 0
        assert all(e.end_reason == "env_error" for e in batch.episodes)
        assert all("TurnLost: the vLLM server died during this turn" in m for m in batch.env_error_messages)

        torch.manual_seed(2)
        lost_second = LosesTurn(generator, lose=1)
        batch = run_rollout(env, pool, lost_second, tasks, group_size, cfg.rollout, 1.0, 3)
    assert lost_second.calls == 2  # tasks are >= 2 steps away: all four were running at turn 1
    assert batch.env_errors == batch.engine_lost == 4 and batch.samples == []
    assert batch.metrics()["rollout/engine_lost_episodes"] == 4.0
    assert [len(e.transitions) for e in batch.episodes] == [1, 1, 1, 1]  # turn 0 happened, then was discarded


class FlakyGridNav(GridNavEnv):
    """Real gridnav that raises on reset, or on its ``fail_turn``-th step (0-based)."""

    def __init__(self, fail_reset: bool = False, fail_turn: int | None = None):
        super().__init__()
        self.fail_reset, self.fail_turn, self.turns = fail_reset, fail_turn, 0

    def reset(self, task=None, seed=None):
        if self.fail_reset:
            raise RuntimeError("reset exploded")
        self.turns = 0
        return super().reset(task, seed)

    def step(self, command):
        if self.turns == self.fail_turn:
            raise RuntimeError("step exploded")
        self.turns += 1
        return super().step(command)


class ListPool(EnvPool):
    """A local pool over given env instances (one per slot), with the pool's error contract."""

    def __init__(self, envs):
        self.envs, self.n_slots = envs, len(envs)

    def _run(self, method, requests):
        results = []
        for slot, args in requests:
            try:
                results.append(getattr(self.envs[slot], method)(*args))
            except Exception as exc:
                results.append(exc)
        return results

    def close(self):
        pass


def test_env_errors_on_reset_and_step_drop_exactly_those_episodes(setup):
    cfg, generator = setup
    env = GridNavEnv()
    tasks, group_size = far_tasks(env, 2), 3
    envs = [FlakyGridNav() for _ in range(len(tasks) * group_size)]
    envs[1] = FlakyGridNav(fail_reset=True)
    envs[4] = FlakyGridNav(fail_turn=1)  # after one good step: that step's sample goes too
    torch.manual_seed(2)
    batch = run_rollout(env, ListPool(envs), generator, tasks, group_size, cfg.rollout, 1.0)

    reasons = [e.end_reason for e in batch.episodes]
    assert [i for i, r in enumerate(reasons) if r == "env_error"] == [1, 4]
    assert batch.env_errors == 2
    first, second = batch.env_error_messages
    assert first.startswith(f"{tasks[0].id}: RuntimeError: reset exploded\nTraceback")
    assert second.startswith(f"{tasks[1].id}: RuntimeError: step exploded\nTraceback")
    assert batch.episodes[1].transitions == [] and len(batch.episodes[4].transitions) == 1

    kept = [e for i, e in enumerate(batch.episodes) if i not in (1, 4)]
    assert all(e.end_reason in ("done", "max_steps") and e.transitions for e in kept)
    assert len({s.traj_id for s in batch.samples}) == len(kept)
    check_kept_episodes(env, batch, group_size, env.max_steps)
    dropped_group = batch.episodes[4].group_id
    assert sum(s.group_id == dropped_group for s in batch.samples) == sum(
        len(e.transitions) for e in batch.episodes[3:6] if e.end_reason != "env_error"
    )


def test_every_slot_failing_on_reset_gives_an_empty_batch(setup):
    cfg, generator = setup
    env = GridNavEnv()
    pool = ListPool([FlakyGridNav(fail_reset=True) for _ in range(2)])
    batch = run_rollout(env, pool, generator, far_tasks(env, 1), 2, cfg.rollout, 1.0)
    assert [e.end_reason for e in batch.episodes] == ["env_error"] * 2
    assert batch.samples == [] and batch.env_errors == 2 and batch.generated_tokens == 0
    assert batch.generate_seconds == 0.0


def test_slot_drop_counts_once_and_record_ends_on_done():
    task = Task(id="t", description="reach it")
    slot = Slot(index=0, group_id="g0", task=task, traj_id="x",
                episode=Episode(env="e", task_id="t", group_id="g0", end_reason="max_steps"))
    slot.start(Observation(text="here"), 6, RolloutBatch(episodes=[], samples=[]))
    assert slot.running and slot.task_text == "reach it"
    env = GridNavEnv()
    done = StepResult(observation=Observation(text="there"), reward=1.0, done=True, success=True)
    slot.record(env, 0, [1, 2], [3], None, Action(raw="north", command="north"), done)
    assert slot.status == "done" and slot.observation is None
    assert slot.episode.end_reason == "done" and slot.episode.success and slot.episode.return_ == 1.0
    assert slot.history == [("here", "north")]
    (sample,) = slot.samples
    assert (sample.step_index, sample.next_observation_text, sample.allowed) == (0, "there", None)

    other = Slot(index=1, group_id="g0", task=task, traj_id="y",
                 episode=Episode(env="e", task_id="t", group_id="g0", end_reason="max_steps"))
    batch = RolloutBatch(episodes=[other.episode], samples=[])
    other.drop(batch, RuntimeError("once"))
    other.drop(batch, RuntimeError("twice"))
    assert other.status == "env_error" and not other.running and other.episode.end_reason == "env_error"
    assert batch.env_errors == 1 and batch.env_error_messages == ["t: RuntimeError: once"]


def test_env_turn_limit_and_a_need_above_the_limit_are_honoured(setup):
    """An env's info["turn_limit"] caps its episode; info["min_steps"] above the cap is counted and warned."""
    cfg, gen = setup

    class Bounded(GridNavEnv):
        def reset(self, task=None, seed=None):
            obs = super().reset(task=task, seed=seed)
            return obs.model_copy(update={"info": {**obs.info, "turn_limit": 1, "min_steps": 2}})

    env = Bounded()
    tasks = far_tasks(env, 2)
    pool = ListPool([Bounded() for _ in range(4)])
    with pytest.warns(UserWarning, match="needs at least 2 turns but this run allows 1"):
        batch = run_rollout(env, pool, gen, tasks, 2, cfg.rollout, 1.0)
    assert [len(e.transitions) for e in batch.episodes] == [1, 1, 1, 1]
    assert [e.end_reason for e in batch.episodes] == ["max_steps"] * 4
    assert batch.unsolvable_episodes == 4 and batch.metrics()["rollout/unsolvable_episodes"] == 4.0
