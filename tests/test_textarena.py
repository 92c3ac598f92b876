"""textarena adapter against the real textarena 0.7.4 games (no mocks)."""

import random

import pytest

pytest.importorskip("textarena")

from pawkit import plugins  # noqa: E402
from pawkit_adapters.textarena import GAMES, TextArenaEnv  # noqa: E402

REQUIRED = ["TowerOfHanoi-v0", "GuessTheNumber-v0", "FrozenLake-v0", "Minesweeper-v0", "Sudoku-v0", "Mastermind-v0", "2048-v0-super-easy"]
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
    assert sum(name.startswith("textarena/") for name in registry.names()) == len(GAMES) == 19


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
    assert all(TextArenaEnv(g).has_expert for g in GAMES)
    for dropped in ("Chess-v0", "2048-v0", "FifteenPuzzle-v0", "Blackjack-v0"):  # see the comment above GAMES
        with pytest.raises(ValueError, match=f"unknown textarena game '{dropped}'"):
            TextArenaEnv(dropped)


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


# --- rewards: the best play must get the full score and failing play less (issue #17) ---------
# Each failing policy plays the game badly on purpose, reading the hidden state like the expert.


def _failing(game_id: str):
    """A scripted losing policy for ``game_id``: (raw textarena env, turn index) -> command."""
    import itertools

    from pawkit_adapters.textarena import _STEPS, secretary_expert

    def nearest_hole(env, i):
        gs = env.state.game_state
        first, queue = {tuple(gs["player_pos"]): None}, [tuple(gs["player_pos"])]
        for cell in queue:
            if gs["grid"][cell[0]][cell[1]] == "H":
                return f"[{first[cell]}]"
            for name, (dr, dc) in env.actions.items():
                nxt = (cell[0] + dr, cell[1] + dc)
                if nxt not in first and 0 <= nxt[0] < env.size and 0 <= nxt[1] < env.size:
                    first[nxt] = first[cell] or name
                    queue.append(nxt)

    def farthest_guess(env, i):
        left = [x for x in range(1, 21) if x != env.game_number and x not in env.guessed_numbers]
        return f"[{max(left, key=lambda x: abs(x - env.game_number))}]"

    def mine(env, i):
        if env.first_move:
            return "[4 4]"
        return "[{} {}]".format(*next((r, c) for r in range(env.rows) for c in range(env.cols) if env.grid[r][c] == -1))

    def wrong_digit(env, i):
        r, c = next((r, c) for r in range(9) for c in range(9) if env.state.game_state["board"][r][c] == 0)
        return f"[{r + 1} {c + 1} {env.full_grid[r][c] % 9 + 1}]"

    def wrong_code(env, i):
        code = tuple(env.state.game_state["secret_code"])
        return "[{}]".format(" ".join(map(str, [p for p in itertools.permutations(range(1, 7), 4) if p != code][i])))

    def pace(env, i):  # walk without pushing a box
        room, (r, c) = env.room_state, env.player_position
        return next((f"[{n}]" for n, (dr, dc) in _STEPS.items() if room[r + dr, c + dc] in (1, 2)), "[?]")

    def wrong_mapping(env, i):  # a complete mapping, every letter on its own wrong digit
        letters = sorted(env.letters)
        return f"[{letters[i]} {(i + 1) % 10}]"

    def greedy_jump(env, i):
        board = env.state.game_state["board"]
        return "[{} {}]".format(*next((f, t) for f, o, t in env.ALLOWED_MOVES if board[f] and board[o] and not board[t]))

    def rock_a_car(env, i):
        cars = env.state.game_state["vehicles"]
        return next(f"[{v.vid}{s}]" for v in sorted(cars.values(), key=lambda v: v.vid) if v.vid != "X"
                    for s, fw in (("+", True), ("-", False)) if env._can_move(cars, v, fw))

    def worst_button(env, i):
        truth = env.state.game_state["ground_truth"]
        return f"[{min(truth, key=truth.get)}]"

    def wrong_letter(env, i):
        gs = env.state.game_state
        r, c = next((r, c) for r, row in enumerate(gs["board"]) for c, x in enumerate(row) if x == "_")
        return f"[{r} {c} {'b' if gs['solution'][r][c].lower() == 'a' else 'a'}]"

    def wrong_marks(env, i):  # every mark the wrong way round, then flip-flop
        cells = [(n, it, m) for rows in env.game_board_solution.values() for n, items in rows.items() for it, m in items.items()]
        name, item, mark = cells[i % len(cells)]
        wrong = "X" if mark == "O" else "O"
        return f"[{name} {item} {wrong if i < len(cells) or (i // len(cells)) % 2 == 0 else mark}]"

    return {
        "TowerOfHanoi-v0": lambda env, i: ["[A B]", "[B A]"][i % 2],  # shuffle the smallest disk
        "GuessTheNumber-v0": farthest_guess,
        "FrozenLake-v0": nearest_hole,
        "Minesweeper-v0": mine,
        "Sudoku-v0": wrong_digit,
        "Mastermind-v0": wrong_code,
        "2048-v0-super-easy": lambda env, i: "[Up]",  # until Up no longer moves anything (an invalid move), twice
        "LightsOut-v0": lambda env, i: "[0 0]",
        "Sokoban-v0": pace,
        "Countdown-v0": lambda env, i: "[0 1 +]",  # add up the numbers: 190, never 532
        "Cryptarithm-v0": wrong_mapping,
        "PegJump-v0": greedy_jump,
        "RushHour-v0": rock_a_car,
        "Secretary-v0": lambda env, i: "[accept]" if secretary_expert(env) == "[continue]" else "[continue]",
        "ThreeCardMonte-v0": lambda env, i: f"[{(env.ball_pos + 1) % 3}]",
        "Bandit-v0": worst_button,
        "Crosswords-v0": wrong_letter,
        "LogicPuzzle-v0": wrong_marks,
        "Slitherlink-v0": lambda env, i: "[h 0 0]",
    }[game_id]


def play(env: TextArenaEnv, policy, seed: int) -> tuple[float, int, bool]:
    """(return, turns, success) of one episode under pawkit's turn limit (env.max_steps)."""
    env.reset(seed=seed)
    total = 0.0
    for turn in range(env.max_steps):
        result = env.step(policy(env, turn))
        total += result.reward
        if result.done:
            return round(total, 4), turn + 1, result.success
    raise AssertionError(f"{env.name} did not end within its max_steps ({env.max_steps})")


def expert(env, turn):
    return env.expert_action()


def invalid(env, turn):
    return "[?]"


# seed 0: (expert's turns, failing policy's return and turns, return of two invalid moves). The
# expert always scores 1.0. Before issue #17: Bandit's expert scored 0.0 and its failing policy
# 0.3594; the 2048 game (2048-v0, since replaced) could not be won in its 200 turns (0.0) while
# getting stuck scored 0.097; RushHour's failing policy scored 0.0 at the limit but 0.25 by
# quitting; Secretary's invalid moves scored -1.0; and the failing policies below that end at the
# turn limit scored 0.0 instead of the game's completion score (GuessTheNumber 0.7368,
# Mastermind 0.25, LogicPuzzle 0.6667).
EXPECTED = {
    "TowerOfHanoi-v0": (7, 0.0, 14, 0.0),
    "GuessTheNumber-v0": (4, 0.7368, 10, 0.0),
    "FrozenLake-v0": (6, 0.6667, 4, 0.0),  # textarena's partial credit for the distance walked before the hole
    "Minesweeper-v0": (22, 0.0, 3, 0.0),
    "Sudoku-v0": (21, 0.0, 2, 0.0),
    "Mastermind-v0": (1, 0.25, 20, 0.0),
    "2048-v0-super-easy": (69, 0.0209, 6, 0.0156),  # 0.5 score / (1.5 x 252) + 0.5 max tile / 128
    "LightsOut-v0": (7, 0.0, 20, 0.0),
    "Sokoban-v0": (8, 0.0, 30, 0.0),
    "Countdown-v0": (5, 0.658, 5, 0.0),  # 1 - distance / 1000 for the closest number made
    "Cryptarithm-v0": (8, 0.0, 8, 0.0),
    "PegJump-v0": (13, 0.8571, 11, 0.0714),  # 1 - (pegs left - 1) / 14
    "RushHour-v0": (8, 0.25, 100, 0.25),
    "Secretary-v0": (1, 0.0, 2, 0.0),
    "ThreeCardMonte-v0": (1, 0.0, 1, 0.0),
    "Bandit-v0": (21, 0.0, 21, 0.0),
    "Crosswords-v0": (13, 0.0, 2, 0.0),
    "LogicPuzzle-v0": (18, 0.6667, 30, 0.0),
    "Slitherlink-v0": (12, 0.0, 200, 0.0),
}


def test_expected_covers_every_registered_game():
    assert sorted(EXPECTED) == sorted(GAMES)


@pytest.mark.parametrize("game_id", list(GAMES))
def test_best_play_gets_full_score_and_failing_play_less(game_id):
    env = make(game_id)
    best = play(env, expert, seed=0)
    failing = play(env, lambda env, turn: _failing(game_id)(env._env, turn), seed=0)
    quit_ = play(env, invalid, seed=0)
    steps, failing_return, failing_steps, invalid_return = EXPECTED[game_id]
    assert best == (env.max_return, steps, True) == (1.0, steps, True)
    assert (failing[0], failing[1]) == (failing_return, failing_steps) and failing[2] is False
    assert quit_ == (invalid_return, 2, False)
    assert best[0] > failing[0] and best[0] > quit_[0]


def _raw_final_reward(game_id: str, seed: int, commands) -> float:
    """What textarena itself pays for ``commands`` on the raw game (no adapter in between)."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        import textarena as ta

        raw = ta.make(f"{game_id}-raw")
        random.seed(seed)
        raw.reset(num_players=1, seed=seed)
        for command in commands(raw):
            done, _ = raw.step(command)
            if done:
                return raw.close()[0][0]
    raise AssertionError("the raw game did not end")


def test_bandit_scores_the_final_pick_correctly():
    """The issue's example, seed 7: textarena 0.7.4 scores naming the best button 0.0 ("incorrect
    button": it compares the pick with the whole ground-truth dict) and naming the worst 0.433
    (its regret); the adapter scores them 1.0 and 0.0."""
    def best_button(raw):
        truth = raw.state.game_state["ground_truth"]
        return [f"[{max(truth, key=truth.get)}]"] * 21

    def worst_button(raw):
        truth = raw.state.game_state["ground_truth"]
        return [f"[{min(truth, key=truth.get)}]"] * 21

    assert _raw_final_reward("Bandit-v0", 7, best_button) == 0.0
    assert round(_raw_final_reward("Bandit-v0", 7, worst_button), 3) == 0.433
    env = make("Bandit-v0")
    assert play(env, expert, seed=7) == (1.0, 21, True)
    assert play(env, lambda env, turn: _failing("Bandit-v0")(env._env, turn), seed=7) == (0.0, 21, False)
    env.reset(seed=7)
    for _ in range(20):
        env.step(env.expert_action())
    last = env.step(env.expert_action())
    assert last.info["reason"] == "Congratulations! You chose the correct button."
    assert last.observation.text.endswith("Game over: Congratulations! You chose the correct button.")


def test_turn_limit_pays_the_games_completion_score():
    """The adapter ends the game at max_steps with textarena's turn-limit score; textarena's own
    limit would only end it one turn later (and a rollout cut at max_steps paid nothing)."""
    env = make("GuessTheNumber-v0")
    env.reset(seed=0)
    assert env._env.game_number == 13
    for guess in [1, 2, 3, 4, 5, 6, 7, 8, 9]:
        assert env.step(f"[{guess}]").done is False
    last = env.step("[20]")  # the 10th guess, 7 away from 13: textarena's score 1 - 7 / 19
    assert (last.done, last.success, last.reward) == (True, False, 1 - 7 / 19)
    assert last.info["reason"] == "The turn limit of 10 turns has been reached. Completion score: 0.632."
    with pytest.raises(RuntimeError, match="call reset"):
        env.step("[1]")


def test_rewards_are_clipped_to_zero_one():
    """Secretary ends two invalid moves with textarena's default penalty of -1.0: the adapter pays 0."""
    assert _raw_final_reward("Secretary-v0", 0, lambda raw: ["[?]", "[?]"]) == -1.0
    assert play(make("Secretary-v0"), invalid, seed=0) == (0.0, 2, False)


@pytest.mark.slow
@pytest.mark.parametrize("game_id", list(GAMES))
def test_expert_wins_every_sampled_task_within_max_steps(game_id):
    """30 train and 10 test tasks per game (10 + 5 where a reset takes up to a second): the expert
    wins each within the env's turn limit, and the failing policy scores less."""
    env = make(game_id)
    train, test = (10, 5) if game_id in ("RushHour-v0", "Sokoban-v0") else (30, 10)
    seeds = [t.seed for t in env.tasks("train")[:train]] + [t.seed for t in env.tasks("test")[:test]]
    for seed in seeds:
        total, _, success = play(env, expert, seed)
        assert (total, success) == (1.0, True), (game_id, seed)
        failing = play(env, lambda env, turn: _failing(game_id)(env._env, turn), seed)
        assert failing[0] < total and not failing[2], (game_id, seed)
