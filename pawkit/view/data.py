"""A run folder as the viewer reads it: config, metrics, dumped episodes and their WM views.

Reads only files a run writes (docs/training.md): ``config.yaml``, ``metrics.jsonl``,
``eval_before_after.json``, ``trajectories/step-N.jsonl`` (one Episode per line) and
``trajectories/step-N.view.jsonl`` (pawkit/train/wm_view.py; optional). Episodes stay plain JSON,
so a plugin env's episodes need no code here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from pawkit.protocol import UsageError

STEP_FILE = re.compile(r"step-(\d+)\.jsonl$")


def _jsonl(path: Path) -> list[Any]:
    rows = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:  # a torn last line of a live run
            continue
    return rows


def dumped_steps(folder: Path) -> dict[int, Path]:
    """Step number → its ``trajectories/step-N.jsonl``."""
    found = {}
    for path in sorted((folder / "trajectories").glob("step-*.jsonl")):
        m = STEP_FILE.search(path.name)
        if m:
            found[int(m.group(1))] = path
    return found


def load_run(folder: Path, views: dict[int, list[dict]] | None = None) -> dict[str, Any]:
    """Everything the page shows of one run. ``views`` (step → one dict per episode) replace
    the stored ``step-N.view.jsonl`` (``pawkit view --model``). Raises ``UsageError`` for a
    folder that is not a run (no ``metrics.jsonl`` nor ``trajectories/``)."""
    folder = Path(folder)
    metrics_path = folder / "metrics.jsonl"
    if not folder.is_dir() or not (metrics_path.exists() or (folder / "trajectories").is_dir()):
        raise UsageError(f"{folder} is not a pawkit run folder (no metrics.jsonl or trajectories/)")
    config = yaml.safe_load((folder / "config.yaml").read_text()) if (folder / "config.yaml").exists() else {}
    steps = {}
    for step, path in dumped_steps(folder).items():
        episodes = _jsonl(path)
        side = path.with_name(path.name.replace(".jsonl", ".view.jsonl"))
        extra = (views or {}).get(step) or (_jsonl(side) if side.exists() else [])
        for i, episode in enumerate(episodes):
            view = extra[i] if i < len(extra) else {}
            for t, info in zip(episode.get("transitions", []), view.get("transitions", [])):
                t["view"] = info
        steps[str(step)] = episodes
    before_after = folder / "eval_before_after.json"
    return {
        "name": folder.name if folder.name not in ("", ".") else str(folder.resolve().name),
        "path": str(folder),
        "config": config or {},
        "metrics": _jsonl(metrics_path) if metrics_path.exists() else [],
        "steps": steps,
        "before_after": json.loads(before_after.read_text()) if before_after.exists() else None,
    }


def summary(config: dict) -> dict[str, Any]:
    """The config lines the page lists per run."""
    get = lambda section, key: (config.get(section) or {}).get(key)  # noqa: E731
    return {
        "env": get("env", "name"), "model": get("model", "name"), "algorithm": get("algorithm", "name"),
        "paw": get("paw", "enabled"), "selector": get("paw", "selector"), "rho": get("paw", "rho"),
        "steps": get("trainer", "steps"), "lr": get("trainer", "lr"), "context": get("rollout", "context"),
        "tasks x group": f"{get('rollout', 'tasks_per_step')} x {get('rollout', 'group_size')}", "seed": config.get("seed"),
    }
