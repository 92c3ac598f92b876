"""Game files: ALFWorld's own ``game.tw-pddl`` generation, its solvability check, its loader rules.

These follow ``alfworld-generate`` and ``AlfredTWEnv.collect_game_files`` step by step, using
the library pieces they use (``add_task_to_grammar``, the Demangler/Infos/Expert wrappers on
TextWorld's ``PddlEnv``), so a game pawkit accepts is a game ALFWorld would accept.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import zlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

from pawkit.cache import cache_dir
from pawkit.own_random import OwnRandom

SPLITS = ("train", "valid_seen", "valid_unseen")


def cache_root() -> Path:
    """pawkit's cache (``PAWKIT_CACHE``) for ALFWorld: pawkit/cache.py (no torch, workers import it)."""
    return cache_dir() / "alfworld"


def logic(data_dir: Path | None = None) -> tuple[str, str]:
    """(PDDL domain, TextWorld grammar): the data folder's ``logic/`` if present, else the wheel's."""
    if data_dir is not None and (data_dir / "logic" / "alfred.pddl").exists():
        return (data_dir / "logic" / "alfred.pddl").read_text(), (data_dir / "logic" / "alfred.twl2").read_text()
    data = resources.files("alfworld") / "data"
    return (data / "alfred.pddl").read_text(), (data / "alfred.twl2").read_text()


def make_tw_env(expert: bool = True):
    """TextWorld's PDDL engine with ALFWorld's wrappers, as ``alfworld-generate`` builds it."""
    import textworld
    from alfworld.agents.environment.alfred_tw_env import (
        AlfredDemangler,
        AlfredExpert,
        AlfredExpertType,
        AlfredInfos,
    )
    from textworld.envs import PddlEnv

    infos = textworld.EnvInfos(won=True, admissible_commands=True, extras=["gamefile"])
    env = AlfredInfos(AlfredDemangler(PddlEnv(infos), shuffle=False))
    return AlfredExpert(env, expert_type=AlfredExpertType.HANDCODED) if expert else env


def expert_random(game_file: str | Path) -> OwnRandom:
    """The handcoded expert's own stream of the global ``random``, seeded by the game's name.

    ALFWorld's handcoded expert draws from the *global* ``random`` when it is stuck
    (``random.choice`` in alfworld/agents/expert/handcoded_expert.py). Seeding its stream from the
    game file's name makes the expert replay exactly the walkthrough checked at generation time,
    so "solvable" stays true at play time; run inside ``.active()`` it never moves the caller's
    seeded global stream (pawkit/own_random.py).
    """
    return OwnRandom(zlib.crc32(Path(game_file).parent.name.encode()))


def solve(env, game_file: Path, max_steps: int) -> tuple[list[str] | None, str | None]:
    """Play the handcoded expert (no random perturbation): its walkthrough, or why it failed."""
    trajectory: list[str] = []
    try:
        env.load(str(game_file))
        with expert_random(game_file).active():  # the whole play: only TextWorld draws in here
            state = env.reset()
            done = False
            while not done:
                if len(trajectory) >= max_steps:
                    return None, f"expert needs more than {max_steps} steps"
                command = state["extra.expert_plan"][0]
                state, _, done = env.step(command)
                trajectory.append(command)
    except (Exception, SystemExit) as exc:  # the expert signals failure by raising (e.g. its step timeout)
        return None, f"expert failed: {type(exc).__name__}: {exc}"
    return trajectory, None


def write_game_file(
    trial: Path, out: Path, domain: str, grammar: str, env, max_steps: int, rng: random.Random
) -> tuple[bool, str | None]:
    """``trial``'s traj_data.json + initial_state.pddl → ``out``/game.tw-pddl, solvability recorded."""
    from alfworld.agents.utils.misc import add_task_to_grammar

    traj = json.loads((trial / "traj_data.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    if out != trial:
        shutil.copy(trial / "traj_data.json", out / "traj_data.json")
        shutil.copy(trial / "initial_state.pddl", out / "initial_state.pddl")
    game = {
        "pddl_domain": domain,
        "grammar": add_task_to_grammar(grammar, traj, rng=rng),
        "pddl_problem": (trial / "initial_state.pddl").read_text(),
        "solvable": None,
        "walkthrough": None,
    }
    game_file = out / "game.tw-pddl"
    game_file.write_text(json.dumps(game))
    walkthrough, why = solve(env, game_file, max_steps)
    game["walkthrough"], game["solvable"] = walkthrough, walkthrough is not None
    game_file.write_text(json.dumps(game))
    return walkthrough is not None, why


@dataclass
class Collection:
    """The playable games of one split, plus every folder skipped and the reason."""

    games: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def task_type_of(game_dir: Path) -> str:
    return json.loads((game_dir / "traj_data.json").read_text())["task_type"]


def collect(split_dir: Path, task_types: Iterable[str], convert_into: Path | None) -> Collection:
    """ALFWorld's loader rules; trials with only initial_state.pddl get a game file in ``convert_into``."""
    wanted = set(task_types)
    found = Collection()
    pending: list[Path] = []
    for traj_file in sorted(split_dir.rglob("traj_data.json")):
        trial = traj_file.parent
        rel = str(trial.relative_to(split_dir))
        if "movable" in rel or "Sliced" in rel:
            found.skipped.append((rel, "movable receptacles and sliced objects are not supported by ALFWorld"))
            continue
        if task_type_of(trial) not in wanted:
            continue
        game_file = trial / "game.tw-pddl"
        if not game_file.exists() and convert_into is not None:
            converted = convert_into / rel / "game.tw-pddl"
            if converted.exists():
                game_file = converted
            elif (trial / "initial_state.pddl").exists():
                pending.append(trial)
                continue
        if not game_file.exists():
            found.skipped.append((rel, "no game.tw-pddl and no initial_state.pddl to generate it from"))
            continue
        _keep(found, rel, game_file)
    if pending:
        _convert(split_dir, pending, convert_into, found)
    found.games.sort()
    return found


def _keep(found: Collection, rel: str, game_file: Path) -> None:
    game: dict[str, Any] = json.loads(game_file.read_text())
    if "solvable" not in game:
        found.skipped.append((rel, "game.tw-pddl has no 'solvable' key"))
    elif not game["solvable"]:
        found.skipped.append((rel, "unsolvable by the handcoded expert"))
    else:
        found.games.append(game_file)


def _convert(split_dir: Path, trials: list[Path], into: Path, found: Collection) -> None:
    """Generate the missing game files (once; cached), with a progress bar: ~2 s per game."""
    from rich.console import Console
    from rich.progress import Progress

    domain, grammar = logic(split_dir.parent.parent)
    env = make_tw_env()
    rng = random.Random(0)
    with Progress(transient=True, console=Console(stderr=True)) as progress:
        job = progress.add_task(f"ALFWorld: generating {len(trials)} game files", total=len(trials))
        for trial in trials:
            rel = str(trial.relative_to(split_dir))
            write_game_file(trial, into / rel, domain, grammar, env, 10_000, rng)
            _keep(found, rel, into / rel / "game.tw-pddl")
            progress.advance(job)


def convert_cache(data_dir: Path) -> Path:
    """Where game files generated for an official-layout folder live (keyed by its path)."""
    key = hashlib.sha1(str(data_dir.resolve()).encode()).hexdigest()[:12]
    return cache_root() / "converted" / key
