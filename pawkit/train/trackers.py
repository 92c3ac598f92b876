"""Experiment trackers: ``trainer.report_to`` names backends from the ``TRACKERS`` registry.

``jsonl`` (``output_dir/metrics.jsonl``, written by ``RunLogger``) is always on. The others are
optional packages; ``check_report_to`` runs before the model loads and refuses an unknown name
or a missing package in one line with its install hint. Every backend writes inside the run
folder: ``tensorboard/`` (TensorBoard event files), ``wandb/`` (W&B; offline unless
``WANDB_MODE`` says otherwise), ``trackio/`` (Trackio's local SQLite store, unless
``TRACKIO_DIR`` is set).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pawkit.config import Config
from pawkit.protocol import UsageError

_USER_SET = {k for k in ("TRACKIO_DIR",) if k in os.environ}  # set by the user before pawkit ran: their choice


class Tracker:
    """One backend of a run: ``log`` each step's metrics (namespaced keys, docs/training.md), ``close`` once."""

    def log(self, metrics: dict[str, float], step: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class TrackerSpec:
    module: str | None  # the package it needs (checked with importlib, never imported early); None = built in
    hint: str  # the one-line install hint
    open: Callable[[Path, Config], Tracker | None]


TRACKERS: dict[str, TrackerSpec] = {}


def register_tracker(name: str, module: str | None, hint: str = ""):
    """Decorator: ``open(out, config) -> Tracker`` becomes backend ``name`` of ``trainer.report_to``."""
    def wrap(open_fn):
        TRACKERS[name] = TrackerSpec(module, hint, open_fn)
        return open_fn
    return wrap


def check_report_to(config: Config) -> list[str]:
    """The backends of ``config.trainer.report_to`` (jsonl first); raises ``UsageError`` (one line)
    for an unknown name or an optional package that is not installed."""
    t = config.trainer
    names = list(dict.fromkeys(["jsonl", *t.report_to, *(["tensorboard"] if t.tensorboard else [])]))  # the old key still works
    for name in names:
        spec = TRACKERS.get(name)
        if spec is None:
            raise UsageError(f"unknown trainer.report_to backend {name!r}; known: {', '.join(TRACKERS)}")
        if spec.module is not None and importlib.util.find_spec(spec.module) is None:
            raise UsageError(f"trainer.report_to={name} needs the {spec.module} package: {spec.hint}")
    return names


def open_trackers(out: Path, config: Config) -> list[Tracker]:
    """Start every backend of ``report_to`` except the built-in jsonl."""
    trackers = [TRACKERS[name].open(out, config) for name in check_report_to(config)]
    return [t for t in trackers if t is not None]


@register_tracker("jsonl", None)
def _jsonl(out: Path, config: Config) -> None:
    return None  # metrics.jsonl: RunLogger writes it (a required file: a full disk stops the run)


class _TensorBoard(Tracker):
    def __init__(self, out: Path):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(out / "tensorboard"))

    def log(self, metrics: dict[str, float], step: int) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        self.writer.close()


@register_tracker("tensorboard", "tensorboard", "pip install 'pawkit[tensorboard]'")
def _tensorboard(out: Path, config: Config) -> Tracker:
    return _TensorBoard(out)


class _Wandb(Tracker):
    def __init__(self, out: Path, config: Config):
        import wandb

        (out / "wandb").parent.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "pawkit"), name=out.name, dir=str(out),
                              mode=os.environ.get("WANDB_MODE", "offline"), config=config.model_dump(mode="json"),
                              settings=wandb.Settings(console="off", silent=True))

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.run.log(dict(metrics), step=step)

    def close(self) -> None:
        self.run.finish()


@register_tracker("wandb", "wandb", "pip install 'pawkit[wandb]' (runs offline unless WANDB_MODE=online)")
def _wandb(out: Path, config: Config) -> Tracker:
    return _Wandb(out, config)


class _Trackio(Tracker):
    def __init__(self, out: Path, config: Config):
        os.environ.setdefault("TRACKIO_DIR", str(out / "trackio"))  # read when trackio is first imported (in this process)
        import trackio
        from trackio.utils import TRACKIO_DIR  # fixed at that first import: a later run in this process shares it

        if Path(TRACKIO_DIR) != out / "trackio" and "TRACKIO_DIR" not in _USER_SET:
            print(f"warning: trackio writes to {TRACKIO_DIR} (chosen when this process first imported it), "
                  f"not {out / 'trackio'}", file=sys.stderr)

        self.trackio = trackio
        self.run = trackio.init(project=os.environ.get("TRACKIO_PROJECT", "pawkit"), name=out.name,
                                config=config.model_dump(mode="json"), embed=False, auto_log_cpu=False, auto_log_gpu=False)

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.trackio.log({k: v for k, v in metrics.items() if k != "step"}, step=step)  # "step" is trackio's own

    def close(self) -> None:
        self.trackio.finish()


@register_tracker("trackio", "trackio", "pip install 'pawkit[trackio]'")
def _trackio(out: Path, config: Config) -> Tracker:
    return _Trackio(out, config)
