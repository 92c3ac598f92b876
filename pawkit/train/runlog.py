"""Run outputs: a rich live progress bar, ``metrics.jsonl``, trajectory dumps, TensorBoard."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

from pawkit.config import Config
from pawkit.protocol import Episode


class RunLogger:
    def __init__(self, out: Path, config: Config, start: int = 0, enabled: bool = True):
        self.out, self.config, self.start, self.enabled = out, config, start, enabled
        self.progress = None
        self.writer = None

    def __enter__(self) -> "RunLogger":
        self.out.mkdir(parents=True, exist_ok=True)
        if self.start > 0:
            _forget_steps_after(self.out / "metrics.jsonl", self.start)
        self.metrics_file = open(self.out / "metrics.jsonl", "a")
        if self.config.trainer.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise ValueError("trainer.tensorboard=true needs tensorboard: pip install 'pawkit[tensorboard]'") from None
            self.writer = SummaryWriter(str(self.out / "tensorboard"))
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self.progress = Progress(
                TextColumn("train {task.fields[env]}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                TextColumn("{task.fields[status]}"),
            )
            self.progress.start()
            self.task = self.progress.add_task(
                "train", total=self.config.trainer.steps, completed=self.start, env=self.config.env.name, status=""
            )
        return self

    def step(self, metrics: dict[str, float]) -> None:
        self.metrics_file.write(json.dumps(metrics) + "\n")
        self.metrics_file.flush()
        if self.writer is not None:
            for key, value in metrics.items():
                self.writer.add_scalar(key, value, int(metrics["step"]))
        if self.progress is not None:
            status = (
                f"success {metrics['rollout/success_rate']:.2f} return {metrics['rollout/mean_return']:.2f} "
                f"loss {metrics.get('loss/pg_loss', 0.0):+.3f} {metrics['perf/tokens_per_second']:.0f} tok/s"
            )
            if "eval/success_rate" in metrics:
                status += f" eval {metrics['eval/success_rate']:.2f}"
            self.progress.update(self.task, completed=int(metrics["step"]), status=status)

    def dump_episodes(self, step: int, episodes: Sequence[Episode]) -> None:
        folder = self.out / "trajectories"
        folder.mkdir(exist_ok=True)
        with open(folder / f"step-{step:06d}.jsonl", "w") as fh:
            fh.writelines(e.to_json() + "\n" for e in episodes)

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()
        if self.writer is not None:
            self.writer.close()
        self.metrics_file.close()


def _forget_steps_after(path: Path, step: int) -> None:
    """On resume from checkpoint ``step``: drop lines of later steps (logged, then killed before
    their checkpoint) and a torn last line, so every step appears once in ``metrics.jsonl``."""
    if not path.exists():
        return
    kept, dropped = [], False
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line + "\n")
                continue
        except (ValueError, KeyError, TypeError):
            pass
        dropped = True
    if dropped:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(kept))
        os.replace(tmp, path)
