"""textarena adapter against the real textarena 0.7.4 games (no mocks)."""

import random

import pytest

pytest.importorskip("textarena")

from pawkit import plugins  # noqa: E402
from pawkit_adapters.textarena import GAMES, TextArenaEnv  # noqa: E402

REQUIRED = ["TowerOfHanoi-v0", "GuessTheNumber-v0", "FrozenLake-v0", "Minesweeper-v0", "Sudoku-v0", "Mastermind-v0", "2048-v0"]
FAST_GAMES = [g for g in GAMES if g not in ("RushHour-v0", "Sokoban-v0")]  # those two take 0.1-0.3 s per reset


def make(game_id: str) -> TextArenaEnv:
    return plugins.get("env", f"textarena/{game_id}")()


def run(env: TextArenaEnv, policy, seed: int):
    obs = env.reset(seed=seed)
    results = []
    for _ in range(env.max_steps * 2):
        results.append(env.step(policy(obs)))
        obs = results[-1].observation
        if results[-1].done:
            break
    return results


def test_registry_lists_required_games_as_ready():
    registry = plugins.registry("env")
    for game in REQUIRED:
        entry = registry.get(f"textarena/{game}")
        assert (entry.plugin, entry.status()) == ("textarena", "ready")
    assert sum(name.startswith("textarena/") for name in registry.names()) == len(GAMES) == 21


def test_optimal_hanoi_policy_solves_in_seven_moves():
    env = make("TowerOfHanoi-v0")
    obs = env.reset(seed=0)
    assert obs.admissible_actions is None
    assert obs.text == "Current Board: \nA: [3, 2, 1]\nB: []\nC: []\n."
    assert obs.task.startswith("You are playing Tower of Hanoi with 3 disks.")
    moves = []
    while True:
        moves.append(env.expert_action())
        r = env.step(moves[-1])
        if r.done:
            break
    assert moves == ["[A C]", "[A B]", "[C B]", "[A C]", "[B A]", "[B C]", "[A C]"]
    assert (r.reward, r.success, r.info["invalid_action"]) == (1.0, True, False)


def test_scripted_hanoi_without_brackets():
    env = make("TowerOfHanoi-v0")
    env.reset(seed=1)
    for move in ["A C", "A B", "C B", "A C", "B A", "B C"]:
        assert env.step(move).done is False
    r = env.step("A C")
    assert (r.done, r.reward, r.success) == (True, 1.0, True)


def test_invalid_move_semantics():
    env = make("TowerOfHanoi-v0")
    env.reset(seed=0)
    first = env.step("[C A]")  # empty tower: a warning, the game goes on
    assert (first.done, first.info["invalid_action"], first.reward) == (False, True, 0.0)
    assert "You attempted an invalid move. Reason: You tried to move a disk from an empty tower." in first.observation.text
    ok = env.step("[A C]")  # a valid move clears the warning
    assert (ok.done, ok.info["invalid_action"]) == (False, False)
    env.step("hello")
    second = env.step("[B B]")  # two invalid moves in a row end the game
    assert (second.done, second.success, second.info["invalid_action"]) == (True, False, True)
    assert second.reward == 0.0  # textarena's penalty: share of disks correctly on C (none: disk 1 alone is not the base)
    assert "Game over: Invalid Move:" in second.observation.text
    with pytest.raises(RuntimeError, match="call reset"):
        env.step("[A B]")


@pytest.mark.parametrize("game_id", ["GuessTheNumber-v0", "FrozenLake-v0", "Sudoku-v0", "Mastermind-v0"])
def test_experts_win(game_id):
    env = make(game_id)
    for seed in range(3):
        results = run(env, lambda obs: env.expert_action(), seed)
        assert (results[-1].done, results[-1].success, results[-1].reward) == (True, True, 1.0)
        assert not any(r.info["invalid_action"] for r in results)


@pytest.mark.parametrize("game_id", FAST_GAMES)
def test_random_policy_finishes_without_crashing(game_id):
    env = make(game_id)
    rng = random.Random(0)
    for seed in range(2):
        results = run(env, lambda obs: env.random_action(obs, rng), seed)
        assert all(isinstance(r.reward, float) for r in results)
        assert all(r.observation.text for r in results)
        if results[-1].done:
            assert results[-1].success == (results[-1].reward >= env.max_return)


@pytest.mark.slow
@pytest.mark.parametrize("game_id", ["RushHour-v0", "Sokoban-v0"])
def test_random_policy_slow_games(game_id):
    test_random_policy_finishes_without_crashing(game_id)


def test_same_task_same_game_and_isolated_global_rng():
    env, other = make("Minesweeper-v0"), make("Minesweeper-v0")
    task = env.tasks("test")[0]
    random.seed(123)
    before = random.random()
    random.seed(123)
    a = [env.reset(task=task).text, env.step("[3 3]").observation.text]
    b = [env.reset(task=task).text]
    other.reset(seed=99)  # an interleaved env must not disturb this one's game
    other.step("[0 0]")
    b.append(env.step("[3 3]").observation.text)
    assert a == b
    assert random.random() == before  # textarena's seeding never touched the caller's RNG


def test_splits_disjoint_and_unknown_split():
    env = make("GuessTheNumber-v0")
    train, test = {t.seed for t in env.tasks("train")}, {t.seed for t in env.tasks("test")}
    assert (len(train), len(test), train & test) == (1000, 100, set())
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        env.tasks("dev")


def test_guess_the_number_observation_before_first_move():
    env = make("GuessTheNumber-v0")
    obs = env.reset(seed=3)
    assert obs.text == "The game has started. Submit your first move."
    r = env.step("[10]")
    assert r.observation.text == "The target number is lower."


def test_constructor_is_cheap_and_validates():
    env = TextArenaEnv("Sudoku-v0")
    assert (env.name, env.max_steps, env.max_return, env.has_expert) == ("textarena/Sudoku-v0", 100, 1.0, True)
    assert TextArenaEnv("2048-v0").has_expert is False
    with pytest.raises(ValueError, match="unknown textarena game 'Chess-v0'"):
        TextArenaEnv("Chess-v0")


@pytest.mark.parametrize("game_id", [g for g, spec in GAMES.items() if spec.actions and g in FAST_GAMES])
def test_action_list_moves_are_all_accepted_by_the_game(game_id):
    """action_list=true lists the game's fixed moves as admissible actions on every observation,
    and random play over them runs a game to its end."""
    env = plugins.get("env", f"textarena/{game_id}")(action_list=True)
    assert env.reset(seed=1).admissible_actions == list(GAMES[game_id].actions)
    rng = random.Random(0)
    results = run(env, lambda obs: rng.choice(obs.admissible_actions), seed=1)
    assert results[-1].done
    assert results[-1].observation.admissible_actions == list(GAMES[game_id].actions)
    assert make(game_id).reset(seed=1).admissible_actions is None  # off by default


def test_action_list_is_refused_for_games_without_a_fixed_move_set():
    with pytest.raises(ValueError, match="Sudoku-v0 has no fixed action list; action_list=true works for .*Secretary-v0"):
        TextArenaEnv("Sudoku-v0", action_list=True)
