"""ScienceWorld's task names and their train/dev/test variation splits.

Names come from the package's ``tasks.json`` (read without importing the package, so
``pawkit envs`` stays fast). Splits are defined by the simulator itself; asking it means
loading every task in a JVM (~10 s), so the answer is cached on disk per package version.
"""

from __future__ import annotations

import importlib.util
import json
import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from pawkit.cache import cache_dir, cache_subdir

if TYPE_CHECKING:
    from pawkit_adapters.sciworld.engine import Engine

SPLITS = ("train", "dev", "test")


def package_folder() -> Path | None:
    spec = importlib.util.find_spec("scienceworld")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def task_names() -> list[str]:
    """The 30 task names in the package's order (``[]`` when the package is missing)."""
    folder = package_folder()
    if folder is None or not (folder / "tasks.json").exists():
        return []
    return [t["task_name"] for t in json.loads((folder / "tasks.json").read_text())]


def is_electrical(task: str) -> bool:
    """Tasks that need connect/disconnect (the package's own rule for noElectricalAction)."""
    return "power-component" in task or "conductivity" in task


def _cache_file() -> Path:
    try:
        tag = version("scienceworld")
    except PackageNotFoundError:
        tag = "unknown"
    return cache_dir() / "sciworld" / f"splits-{tag}.json"


def variation_splits(engine: Callable[[], "Engine"]) -> dict[str, dict[str, list[int]]]:
    """``{task: {"train": [...], "dev": [...], "test": [...]}}``, from the disk cache, else from
    ``engine()`` (called only on a cache miss, so listing tasks needs no JVM once cached)."""
    path = _cache_file()
    if path.exists():
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            pass  # a torn write: ask the engine again
    sw = engine().sw
    splits: dict[str, dict[str, list[int]]] = {}
    for task in sw.get_task_names():
        sw.load(task, 0, "")
        splits[task] = {
            "train": [int(v) for v in sw.get_variations_train()],
            "dev": [int(v) for v in sw.get_variations_dev()],
            "test": [int(v) for v in sw.get_variations_test()],
        }
    cache_subdir("sciworld")  # an unwritable $PAWKIT_CACHE: one line
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(splits))
    tmp.replace(path)
    return splits


class GoldSteps:
    """Gold-path lengths per (simplification, task, variation), cached on disk per package version.

    Generating a gold path costs a reload of 0.2-20 s, so each length is measured once (when the
    env generates the path anyway: ``gold_multiple``, ``gold_path`` or the expert) and kept in
    ``$PAWKIT_CACHE/sciworld/gold-steps-<version>.json``. Writers merge before replacing the
    file, so parallel workers lose at most a length, which is then measured again.
    """

    def __init__(self) -> None:
        self._lengths: dict[str, int] | None = None

    @property
    def path(self) -> Path:  # read at use: $PAWKIT_CACHE may change after construction (tests)
        splits = _cache_file()
        return splits.with_name(splits.name.replace("splits-", "gold-steps-"))

    @staticmethod
    def key(simplification: str, task: str, variation: int) -> str:
        return f"{task}-{variation}@{simplification}"

    def _read(self) -> dict[str, int]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return {k: int(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def get(self, key: str) -> int | None:
        if self._lengths is None:
            self._lengths = self._read()
        return self._lengths.get(key)

    def put(self, key: str, length: int) -> None:
        lengths = {**self._read(), **(self._lengths or {}), key: int(length)}
        self._lengths = lengths
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(lengths, sort_keys=True))
            tmp.replace(self.path)
        except OSError:
            pass  # a read-only cache only costs re-measuring
