"""textarena 0.7.4 single-player games as pawkit environments (``textarena/<GameId>``).

textarena has no admissible-action list, so the observation carries the game's own board and
messages and the game's instructions become the task. Quirks handled here, because a trainer
must never crash on them:

* textarena seeds and draws from the *global* ``random``; each adapter keeps its own generator
  state and swaps it in only around textarena calls, so interleaved environments stay
  reproducible and the caller's RNG is untouched. (No registered game uses the global
  ``numpy.random``: Sokoban seeds its own numpy Generator from the game seed. Swapping numpy's
  state too would cost ~180 us per step.)
* first invalid move = a warning (``info["invalid_action"]``), the second in a row ends the game
  with textarena's penalty reward; a few games pass that reward in the wrong argument (a
  string), which is read as 0.0.
* some games ``print`` debug lines; they are swallowed so ``pawkit play --json`` stays JSON.

``import textarena`` costs ~1.5 s, so it happens on the first ``reset``, never at registration.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import random
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from pawkit.hookspecs import hookimpl
from pawkit.protocol import Env, Observation, StepResult, Task

TEST_SEED_OFFSET = 10_000_000  # test seeds start here, so train and test never share a game
TRAIN_TASKS = 1000
TEST_TASKS = 100
NO_FEEDBACK = "The game has started. Submit your first move."

RawEnv = Any  # a textarena env; typed loosely because textarena is optional


# --- expert (oracle) policies: read the raw game state, return the next command ----------------


def _hanoi_move(pos: dict[int, str], disk: int, target: str) -> tuple[str, str] | None:
    """First move of the optimal plan that puts disks 1..disk on ``target`` (from any legal state)."""
    if disk == 0:
        return None
    if pos[disk] == target:
        return _hanoi_move(pos, disk - 1, target)
    spare = ({"A", "B", "C"} - {pos[disk], target}).pop()
    return _hanoi_move(pos, disk - 1, spare) or (pos[disk], target)


def hanoi_expert(env: RawEnv) -> str:
    towers: dict[str, list[int]] = env.state.game_state["towers"]
    pos = {disk: peg for peg, disks in towers.items() for disk in disks}
    move = _hanoi_move(pos, len(pos), "C")
    if move is None:
        raise ValueError("the tower is already solved")
    return f"[{move[0]} {move[1]}]"


def guess_the_number_expert(env: RawEnv) -> str:
    """Binary search: the bounds are what the game's higher/lower hints have revealed."""
    target = env.game_number
    lo = max([g + 1 for g in env.guessed_numbers if g < target], default=env.min_number)
    hi = min([g - 1 for g in env.guessed_numbers if g > target], default=env.max_number)
    return f"[{(lo + hi) // 2}]"


def mastermind_expert(env: RawEnv) -> str:
    return "[" + " ".join(str(d) for d in env.state.game_state["secret_code"]) + "]"


def sudoku_expert(env: RawEnv) -> str:
    board = env.state.game_state["board"]
    for r in range(9):
        for c in range(9):
            if board[r][c] == 0:
                return f"[{r + 1} {c + 1} {env.full_grid[r][c]}]"
    raise ValueError("the sudoku is already complete")


def frozen_lake_expert(env: RawEnv) -> str:
    """Breadth-first shortest path around the holes."""
    gs = env.state.game_state
    grid, start, goal = gs["grid"], tuple(gs["player_pos"]), tuple(gs["goal_pos"])
    first: dict[tuple[int, int], str | None] = {start: None}
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        if cell == goal:
            return f"[{first[cell]}]"
        for name, (dr, dc) in env.actions.items():
            nxt = (cell[0] + dr, cell[1] + dc)
            if nxt in first or not (0 <= nxt[0] < env.size and 0 <= nxt[1] < env.size):
                continue
            if grid[nxt[0]][nxt[1]] == "H":
                continue
            first[nxt] = first[cell] or name
            queue.append(nxt)
    raise ValueError("no path to the goal")


# --- random moves: plausible commands in each game's syntax (for `pawkit play --policy random`) --


def _pick(*options: str) -> Callable[[random.Random], str]:
    return lambda rng: f"[{rng.choice(options)}]"


def _cells(rows: int, cols: int, base: int = 0, extra: Sequence[str] = ()) -> Callable[[random.Random], str]:
    def move(rng: random.Random) -> str:
        tail = f" {rng.choice(extra)}" if extra else ""
        return f"[{rng.randrange(rows) + base} {rng.randrange(cols) + base}{tail}]"

    return move


def _mastermind(rng: random.Random) -> str:
    return "[" + " ".join(str(d) for d in rng.sample(range(1, 7), 4)) + "]"


def _sudoku(rng: random.Random) -> str:
    return f"[{rng.randint(1, 9)} {rng.randint(1, 9)} {rng.randint(1, 9)}]"


def _countdown(rng: random.Random) -> str:
    i, j = rng.sample(range(6), 2)
    return f"[{i} {j} {rng.choice('+-*/')}]"


def _cryptarithm(rng: random.Random) -> str:
    return f"[{rng.choice('SENDMORY')} {rng.randrange(10)}]"


def _pegjump(rng: random.Random) -> str:
    return f"[{rng.randint(1, 15)} {rng.randint(1, 15)}]"


def _slitherlink(rng: random.Random) -> str:
    return f"[{rng.choice('hv')} {rng.randrange(5)} {rng.randrange(5)}]"


def _crosswords(rng: random.Random) -> str:
    return f"[{rng.randrange(12)} {rng.randrange(12)} {rng.choice('abcdefghijklmnopqrstuvwxyz')}]"


def _rush_hour(rng: random.Random) -> str:
    return f"[{rng.choice('ABCDEFGHX')}{rng.choice('+-')}]"


@dataclass(frozen=True)
class Game:
    """What pawkit needs to know about one textarena game that textarena does not tell."""

    max_steps: int  # the game's own turn limit, or a cap for games without one
    random_move: Callable[[random.Random], str]
    expert: Callable[[RawEnv], str] | None = None
    full_score: float = 1.0  # every registered game gives 1.0 for a win
    actions: tuple[str, ...] = ()  # every legal command, for games with a small fixed move set


def _moves(*options: str) -> tuple[str, ...]:
    return tuple(f"[{o}]" for o in options)


_DIRECTIONS = _pick("up", "down", "left", "right")
_DIRECTION_MOVES = _moves("up", "down", "left", "right")

# Offline single-player games that reset and step on Python 3.11 (verified by tests/test_textarena.py).
# Left out: Set-v0 (its reward is a count of sets found, so "full score" is undefined).
GAMES: dict[str, Game] = {
    "TowerOfHanoi-v0": Game(14, lambda rng: f"[{rng.choice('ABC')} {rng.choice('ABC')}]", hanoi_expert,
                              actions=_moves(*(f"{a} {b}" for a in "ABC" for b in "ABC" if a != b))),
    "GuessTheNumber-v0": Game(10, lambda rng: f"[{rng.randint(1, 20)}]", guess_the_number_expert,
                                actions=_moves(*map(str, range(1, 21)))),
    "FrozenLake-v0": Game(100, _DIRECTIONS, frozen_lake_expert, actions=_DIRECTION_MOVES),
    "Minesweeper-v0": Game(100, _cells(8, 8)),
    "Sudoku-v0": Game(100, _sudoku, sudoku_expert),
    "Mastermind-v0": Game(20, _mastermind, mastermind_expert),
    "2048-v0": Game(200, _pick("Up", "Down", "Left", "Right"), actions=_moves("Up", "Down", "Left", "Right")),
    "LightsOut-v0": Game(20, _cells(5, 5)),
    "FifteenPuzzle-v0": Game(200, _DIRECTIONS, actions=_DIRECTION_MOVES),
    "Sokoban-v0": Game(30, _DIRECTIONS, actions=_DIRECTION_MOVES),
    "Countdown-v0": Game(12, _countdown),
    "Cryptarithm-v0": Game(100, _cryptarithm),
    "PegJump-v0": Game(20, _pegjump),
    "RushHour-v0": Game(100, _rush_hour),
    "Secretary-v0": Game(5, _pick("accept", "continue"), actions=_moves("accept", "continue")),
    "ThreeCardMonte-v0": Game(3, _pick("0", "1", "2"), actions=_moves("0", "1", "2")),
    "Bandit-v0": Game(21, _pick("red", "blue", "green", "yellow", "purple"),
                        actions=_moves("red", "blue", "green", "yellow", "purple")),
    "Blackjack-v0": Game(50, _pick("Hit", "Stand"), actions=_moves("Hit", "Stand")),
    "Crosswords-v0": Game(30, _crosswords),
    "LogicPuzzle-v0": Game(30, lambda rng: f"[{rng.choice(['pizza', 'burger', 'salad'])} {rng.choice(['alice', 'bob', 'charlie'])} {rng.choice('XO')}]"),
    "Slitherlink-v0": Game(200, _slitherlink),
}


def _available() -> bool:
    return importlib.util.find_spec("textarena") is not None


@contextlib.contextmanager
def _quiet() -> Any:
    with contextlib.redirect_stdout(io.StringIO()):
        yield


class TextArenaEnv(Env):
    """One textarena game. ``history="full"`` shows every game message so far, not just the latest.

    ``action_list=True`` (games with a small fixed move set only, see ``Game.actions``) lists every
    legal command as the admissible actions, so ``rollout.constrained=true`` works: a small model
    trained from scratch can then play (and learn) these games.
    """

    max_return = 1.0
    splits = ("train", "test")

    def __init__(self, game_id: str, history: str = "recent", action_list: bool = False) -> None:
        if game_id not in GAMES:
            raise ValueError(f"unknown textarena game {game_id!r}; choose from {', '.join(GAMES)}")
        if history not in ("recent", "full"):
            raise ValueError(f"history must be 'recent' or 'full', not {history!r}")
        if action_list and not GAMES[game_id].actions:
            listed = ", ".join(g for g, spec in GAMES.items() if spec.actions)
            raise ValueError(f"textarena {game_id} has no fixed action list; action_list=true works for {listed}")
        self.action_list = action_list
        self.game_id = game_id
        self.game = GAMES[game_id]
        self.name = f"textarena/{game_id}"
        self.max_steps = self.game.max_steps
        self.max_return = self.game.full_score
        self.role = f"You are an expert player of the text game {game_id.split('-')[0]}."
        self.history = history
        self._env: RawEnv = None
        self._done = True
        self._task_text = ""
        self._board: str | None = None
        self._log: list[str] = []
        self._rng_state: tuple[Any, ...] | None = None

    # --- rng isolation ---------------------------------------------------------------------
    @contextlib.contextmanager
    def _own_rng(self) -> Any:
        """Run textarena on this env's private random stream, with its prints swallowed."""
        outer = random.getstate()
        if self._rng_state is not None:
            random.setstate(self._rng_state)
        try:
            with _quiet():
                yield
        finally:
            self._rng_state = random.getstate()
            random.setstate(outer)

    # --- Env interface ---------------------------------------------------------------------
    def tasks(self, split: str = "train") -> Sequence[Task]:
        if split not in self.splits:
            raise ValueError(f"unknown split {split!r} for {self.name}; choose from {', '.join(self.splits)}")
        offset, count = (0, TRAIN_TASKS) if split == "train" else (TEST_SEED_OFFSET, TEST_TASKS)
        return [Task(id=f"{split}-{offset + i}", split=split, seed=offset + i) for i in range(count)]

    def reset(self, task: Task | None = None, seed: int | None = None) -> Observation:
        if task is not None and task.seed is not None:
            seed = task.seed
        if seed is None:
            seed = random.randrange(2**31)
        with _quiet():
            import textarena as ta

            if self._env is None:
                self._env = ta.make(f"{self.game_id}-raw")
        self._rng_state = None
        with self._own_rng():
            random.seed(seed)
            self._env.reset(num_players=1, seed=seed)
            _, messages = self._env.get_observation()
        self._done = False
        self._board = None
        self._log = []
        self._task_text = ""
        text = self._render(messages, reset=True)
        return self._observation(text)

    def step(self, command: str) -> StepResult:
        if self._env is None or self._done:
            raise RuntimeError(f"{self.name}: the episode is over (or never started); call reset() first")
        action = command.strip()
        if "[" not in action:
            action = f"[{action}]"  # like textarena's ActionFormattingWrapper: "A C" -> "[A C]"
        with self._own_rng():
            done, _ = self._env.step(action)
            _, messages = self._env.get_observation()
            state = self._env.state
            invalid = state.error_count > 0 or bool(state.game_info[0].get("invalid_move"))
            rewards, game_info = self._env.close() if done else (None, None)
        text = self._render(messages)
        info: dict[str, Any] = {"invalid_action": invalid}
        reward = 0.0
        if done:
            self._done = True
            reward = _final_reward(rewards)
            reason = str(game_info[0].get("reason", ""))
            info["reason"] = reason
            text = f"{text}\nGame over: {reason}" if reason else text
        return StepResult(
            observation=self._observation(text),
            reward=reward,
            done=bool(done),
            success=bool(done) and reward >= self.max_return,
            info=info,
        )

    def expert_action(self) -> str:
        if self.game.expert is None:
            raise NotImplementedError(f"{self.name} has no expert policy")
        if self._env is None:
            raise RuntimeError(f"{self.name}: call reset() before asking the expert")
        return self.game.expert(self._env)

    @property
    def has_expert(self) -> bool:
        return self.game.expert is not None

    def random_action(self, observation: Observation, rng: random.Random) -> str:
        return self.game.random_move(rng)

    def anchor(self, observation: Observation) -> str:
        """Group GiGPO steps by the board when the game has one (move messages vary by path)."""
        return observation.info.get("board") or observation.text

    def close(self) -> None:
        self._env = None
        self._done = True

    # --- rendering ---------------------------------------------------------------------------
    def _render(self, messages: list[tuple[Any, Any, Any]], reset: bool = False) -> str:
        from textarena.core import ObservationType

        fresh: list[str] = []
        for _, message, kind in messages:
            # Some games call add_observation with shifted positional args: skip those echoes.
            if not isinstance(kind, ObservationType) or not isinstance(message, str):
                continue
            if kind is ObservationType.PLAYER_ACTION:
                continue
            if kind is ObservationType.PROMPT:
                self._task_text = message.strip()
            elif kind is ObservationType.GAME_BOARD:
                self._board = message.strip()
            else:
                fresh.append(message.strip())
        self._log.extend(fresh)
        shown = list(self._log if self.history == "full" else fresh)
        if self._board:
            shown.append(self._board)
        return "\n".join(shown) or (NO_FEEDBACK if reset else "")

    def _observation(self, text: str) -> Observation:
        info = {"board": self._board} if self._board else {}
        actions = list(self.game.actions) if self.action_list else None
        return Observation(text=text, admissible_actions=actions, task=self._task_text, info=info)


def _final_reward(rewards: dict[int, Any] | None) -> float:
    """textarena's reward for player 0; a non-number (a textarena argument-order bug) counts 0.0."""
    value = (rewards or {}).get(0, 0.0)
    return float(value) if isinstance(value, (int, float)) else 0.0


def _factory(game_id: str) -> Callable[..., TextArenaEnv]:
    def make(**options: Any) -> TextArenaEnv:
        return TextArenaEnv(game_id, **options)

    make.__doc__ = f"textarena {game_id} (single-player, offline)"
    return make


def _check() -> str | None:
    return None if _available() else "needs textarena"


@hookimpl
def register_envs(register: Callable[..., None]) -> None:
    for game_id in GAMES:
        register(f"textarena/{game_id}", _factory(game_id), description=f"textarena {game_id} (single player)", check=_check)
