"""``pawkit alfworld generate``: an offline ALFWorld dataset in the official folder layout.

Each game: pick a floor plan allowed for the task type (ALFRED's ``GOALS_VALID``), scatter
objects (``scenes.arrange``), choose a goal that is not already satisfied, write
traj_data.json + initial_state.pddl, then game.tw-pddl through ALFWorld's generation with
the handcoded expert as the solvability check. Unsolvable games are dropped, counted, and
replaced by a fresh draw (at most ``RETRIES`` per game).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from pawkit_adapters.alfworld import games as gamefiles
from pawkit_adapters.alfworld import scenes

from pawkit.cache import cache_subdir

RETRIES = 8
DEFAULT_GAMES = 60
DEFAULT_SEED = 0
FORMAT_VERSION = 1  # bump when generation changes, so stale default caches are not reused


@dataclass
class Report:
    made: dict[str, int] = field(default_factory=dict)  # split -> games
    per_task_type: dict[str, int] = field(default_factory=dict)
    unsolvable: int = 0
    unsolvable_reasons: dict[str, int] = field(default_factory=dict)
    impossible: dict[str, str] = field(default_factory=dict)  # "split/task_type" -> why
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.made.values())


def split_sizes(games: int) -> dict[str, int]:
    """About 80/10/10, with at least one game in each eval split."""
    if games < 3:
        raise ValueError(f"--games must be >= 3 (one per split), got {games}")
    held = max(1, round(games * 0.1))
    return {"train": games - 2 * held, "valid_seen": held, "valid_unseen": held}


def _scene_pool(split: str) -> list[int]:
    every = scenes.all_scenes()
    unseen = [s for s in every if s in scenes.UNSEEN_SCENES]
    return unseen if split == "valid_unseen" else [s for s in every if s not in scenes.UNSEEN_SCENES]


def _draw(pool: Sequence[int], task_type: str, rng: random.Random):
    """A (scene arrangement, goal params) for ``task_type``, or None if the pool cannot host it."""
    for _ in range(40):
        number = rng.choice(pool)
        scene = scenes.arrange(number, rng)
        candidates = scenes.task_candidates(scene, task_type)
        if candidates:
            params = rng.choice(candidates)
            scenes.settle_targets(scene, task_type, params, rng)
            return scene, params
    return None


def generate(
    out: Path,
    games: int,
    seed: int = DEFAULT_SEED,
    task_types: Sequence[int] = tuple(scenes.TASK_TYPES),
    max_steps: int = 50,
    show_progress: bool = True,
) -> Report:
    """Write ``games`` solvable games under ``out`` (official layout) and a generation.json."""
    from rich.console import Console
    from rich.progress import Progress

    unknown = sorted(set(task_types) - set(scenes.TASK_TYPES))
    if unknown:
        raise ValueError(f"unknown task types {unknown}; choose from 1-6")
    types = [scenes.TASK_TYPES[t] for t in sorted(set(task_types))]
    rng = random.Random(seed)
    domain, grammar = gamefiles.logic()
    (out / "logic").mkdir(parents=True, exist_ok=True)
    (out / "logic" / "alfred.pddl").write_text(domain)
    (out / "logic" / "alfred.twl2").write_text(grammar)
    env = gamefiles.make_tw_env()
    report = Report()
    types_seen: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    start = time.perf_counter()
    sizes = split_sizes(games)
    index = 0
    with Progress(disable=not show_progress, console=Console(stderr=True)) as progress:
        job = progress.add_task("generating ALFWorld games", total=games)
        for split, size in sizes.items():
            pool = _scene_pool(split)
            report.made[split] = 0
            for k in range(size):
                task_type = types[k % len(types)]
                if f"{split}/{task_type}" in report.impossible:
                    task_type = types[(k + 1) % len(types)]
                for _ in range(RETRIES):
                    drawn = _draw(pool, task_type, rng)
                    if drawn is None:
                        report.impossible[f"{split}/{task_type}"] = "no floor plan of this split supports it"
                        break
                    scene, params = drawn
                    index += 1
                    folder = out / "json_2.1.1" / split / scenes.game_folder(task_type, params, scene.number)
                    trial = folder / f"trial_T{seed:05d}_{index:06d}"
                    trial.mkdir(parents=True, exist_ok=True)
                    traj = scenes.traj_data(task_type, params, scene.number, "")
                    (trial / "traj_data.json").write_text(json.dumps(traj, indent=1))
                    (trial / "initial_state.pddl").write_text(scenes.problem(scene, task_type, params, rng))
                    ok, why = gamefiles.write_game_file(trial, trial, domain, grammar, env, max_steps, rng)
                    if ok:
                        report.made[split] += 1
                        types_seen[task_type] += 1
                        break
                    report.unsolvable += 1
                    reasons[(why or "?").split(":")[0]] += 1
                    shutil.rmtree(trial)
                    if not any(folder.iterdir()):
                        folder.rmdir()
                progress.advance(job)
    report.per_task_type = dict(sorted(types_seen.items()))
    report.unsolvable_reasons = dict(reasons)
    report.seconds = round(time.perf_counter() - start, 1)
    (out / "generation.json").write_text(json.dumps({"seed": seed, "games": games, **asdict(report)}, indent=1))
    return report


def default_data(games: int = DEFAULT_GAMES, seed: int = DEFAULT_SEED) -> Path:
    """The cached default set, generated on first use (atomically: concurrent workers are safe)."""
    target = gamefiles.cache_root() / f"generated-v{FORMAT_VERSION}-seed{seed}-games{games}"
    if (target / "generation.json").exists():
        return target
    cache_subdir("alfworld")  # an unwritable $PAWKIT_CACHE: one line, not an OSError traceback
    scratch = Path(tempfile.mkdtemp(prefix=target.name + ".tmp-", dir=target.parent))
    try:
        print(f"ALFWorld: no data set given; generating {games} games once into {target} (a few minutes)", file=sys.stderr)
        generate(scratch, games, seed, show_progress=True)
        try:
            os.rename(scratch, target)
        except OSError:  # another process finished first; its copy is identical
            pass
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target
