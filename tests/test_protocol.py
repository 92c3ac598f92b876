"""Protocol types round-trip through JSON exactly; Env base-class defaults."""

import json
import random

import pytest

from pawkit.protocol import Action, Env, Episode, Observation, StepResult, Task, Transition

OBS = Observation(text="You are in a room. ünïcode ✓", admissible_actions=["look", "go north"], task="find the key", info={"x": [1, 2.5, None], "nested": {"a": "b"}})
OBS_FREE = Observation(text="board\n. . .")
ACTION = Action(raw="<think>hm</think><action>look</action>", command="look", valid=True)
BAD_ACTION = Action(raw="garbage", command="garbage", valid=False, parse_error="no <action> tag")
TRANSITION = Transition(observation=OBS, action=ACTION, next_observation=OBS_FREE, reward=0.25, done=False, info={"invalid_action": False})


def episode() -> Episode:
    return Episode(
        env="gridnav",
        task_id="train-00-12",
        group_id="g7",
        transitions=[TRANSITION, Transition(observation=OBS_FREE, action=BAD_ACTION, reward=-0.1, done=True)],
        **{"return": 0.15},
        success=False,
        end_reason="max_steps",
    )


@pytest.mark.parametrize(
    "value",
    [
        OBS,
        OBS_FREE,
        ACTION,
        BAD_ACTION,
        TRANSITION,
        StepResult(observation=OBS, reward=1.0, done=True, success=True, info={"reason": "won"}),
        Task(id="t1", split="test", seed=10_000_003, description="d", info={"start": [0, 1]}),
    ],
    ids=lambda v: type(v).__name__,
)
def test_json_round_trip_exact(value):
    text = value.model_dump_json()
    again = type(value).model_validate_json(text)
    assert again == value
    assert again.model_dump_json() == text


def test_episode_round_trip_uses_return_alias():
    ep = episode()
    text = ep.to_json()
    data = json.loads(text)
    assert data["return"] == 0.15 and "return_" not in data
    again = Episode.from_json(text)
    assert again == ep
    assert again.to_json() == text
    assert (again.return_, len(again.transitions), again.transitions[1].action.parse_error) == (0.15, 2, "no <action> tag")


def test_episode_accepts_field_name_too():
    assert Episode(env="e", task_id="t", group_id="g", return_=2.0).return_ == 2.0


def test_unknown_fields_rejected():
    with pytest.raises(ValueError):
        Observation.model_validate({"text": "x", "colour": "red"})


class Minimal(Env):
    name = "minimal"

    def __init__(self) -> None:
        self.closed = 0

    def reset(self, task=None, seed=None) -> Observation:
        return Observation(text="start", admissible_actions=["a", "b"])

    def step(self, command: str) -> StepResult:
        return StepResult(observation=Observation(text=command), done=True)

    def close(self) -> None:
        self.closed += 1


def test_env_defaults():
    env = Minimal()
    assert (env.max_return, env.max_steps, env.splits, env.has_expert) == (1.0, 50, ("train",), False)
    tasks = env.tasks("train")
    assert (len(tasks), tasks[0].id, tasks[0].seed, tasks[-1].id) == (100, "seed-0", 0, "seed-99")
    with pytest.raises(ValueError, match="unknown split 'test' for minimal; choose from train"):
        env.tasks("test")
    with pytest.raises(NotImplementedError, match="minimal has no expert policy"):
        env.expert_action()
    obs = env.reset()
    assert env.format_observation(obs) == "start"
    assert env.format_admissible(["a", "b"]) == "'a'\n 'b'"
    assert env.anchor(obs) == "start"
    assert env.random_action(obs, random.Random(0)) == random.Random(0).choice(["a", "b"])
    with pytest.raises(NotImplementedError, match="lists no admissible actions"):
        env.random_action(Observation(text="free"), random.Random(0))


def test_context_manager_closes_even_on_error():
    with Minimal() as env:
        pass
    assert env.closed == 1
    env2 = Minimal()
    with pytest.raises(KeyError):
        with env2:
            raise KeyError("boom")
    assert env2.closed == 1
