"""Run outputs: a rich live progress bar, ``metrics.jsonl``, trajectory dumps, TensorBoard.

Every append-only file of a run (``metrics.jsonl``, ``env_errors.log``, ``config_history.jsonl``)
is opened through ``repair_tail``: a torn last line (a kill or a full disk mid-write) is cut off,
so the next line never merges into it. A full disk while logging metrics stops the run with one
line (``NoSpaceLeft``); auxiliary writes (trajectory dumps, ``env_errors.log``) warn and go on.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Sequence

from pawkit.config import Config
from pawkit.protocol import Episode, UsageError

# What C++/Rust writers (torch's zip writer, safetensors) say when the disk is full.
DISK_FULL_TEXT = ("no space left", "storagefull", "os error 28", "iostream error", "file write failed")


class NoSpaceLeft(UsageError):
    """The disk of the run directory is full: one line, the last complete checkpoint kept."""


def is_disk_full(exc: BaseException, path: Path) -> bool:
    """``exc`` (or its cause) is ENOSPC, or a writer's error while ``path``'s disk is full."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if any(text in str(seen).lower() for text in DISK_FULL_TEXT):
            return True
        seen = seen.__cause__ or seen.__context__
    try:
        return shutil.disk_usage(path).free < (1 << 20)
    except OSError:
        return False


def repair_tail(path: Path) -> int:
    """Cut a torn last line (no final newline) off an append-only file; the bytes removed."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return 0
    if size == 0:
        return 0
    with open(path, "rb+") as fh:
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return 0
        keep, chunk = 0, 1 << 16
        pos = size
        while pos > 0:
            start = max(0, pos - chunk)
            fh.seek(start)
            block = fh.read(pos - start)
            cut = block.rfind(b"\n")
            if cut >= 0:
                keep = start + cut + 1
                break
            pos = start
        fh.truncate(keep)
    print(f"warning: {path} ended in a torn line ({size - keep} bytes, a kill or a full disk mid-write); removed",
          file=sys.stderr)
    return size - keep


def append_lines(path: Path, lines: Sequence[str], required: bool = False) -> bool:
    """Append whole lines; on an OS error the file is cut back to where it was. An auxiliary
    file (``required=False``) then warns and returns False; a required one raises (one line
    ``NoSpaceLeft`` for a full disk)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        repair_tail(path)
        with open(path, "ab", buffering=0) as fh:  # unbuffered: a failed write is cut back here
            start = fh.tell()
            try:
                data = memoryview("".join(lines).encode())
                while data:
                    data = data[fh.write(data):]
            except OSError:
                fh.truncate(start)
                raise
    except OSError as exc:
        if required:
            if is_disk_full(exc, path.parent):
                raise NoSpaceLeft(f"no space left on {path.parent} while writing {path.name}") from None
            raise
        print(f"warning: could not write {path} ({exc}); the run goes on without it", file=sys.stderr)
        return False
    return True


class RunLogger:
    def __init__(self, out: Path, config: Config, start: int = 0, enabled: bool = True):
        self.out, self.config, self.start, self.enabled = out, config, start, enabled
        self.progress = None
        self.writer = None

    def __enter__(self) -> "RunLogger":
        self.out.mkdir(parents=True, exist_ok=True)
        if self.start > 0:
            _forget_steps_after(self.out / "metrics.jsonl", self.start)
        self.metrics_path = self.out / "metrics.jsonl"
        repair_tail(self.metrics_path)
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
                TextColumn("train {task.fields[env]}", markup=False), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TextColumn("{task.fields[status]}", markup=False),
            )
            self.progress.start()
            self.task = self.progress.add_task(
                "train", total=self.config.trainer.steps, completed=self.start, env=self.config.env.name, status=""
            )
        return self

    def step(self, metrics: dict[str, float]) -> None:
        try:
            append_lines(self.metrics_path, [json.dumps(metrics) + "\n"], required=True)
        except NoSpaceLeft:
            raise NoSpaceLeft(f"no space left on {self.out} while writing metrics.jsonl (step {int(metrics['step'])}, "
                              "not checkpointed: a resume redoes it)") from None
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
        """Auxiliary: a failed dump (e.g. a full disk) warns and never costs the step's checkpoint."""
        folder = self.out / "trajectories"
        final = folder / f"step-{step:06d}.jsonl"
        tmp = folder / f".{final.name}.tmp"
        try:
            folder.mkdir(exist_ok=True)
            with open(tmp, "w") as fh:
                fh.writelines(e.to_json() + "\n" for e in episodes)
            os.replace(tmp, final)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            print(f"warning: could not write {final} ({exc}); the run goes on without it", file=sys.stderr)

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()
        if self.writer is not None:
            self.writer.close()


def _forget_steps_after(path: Path, step: int) -> None:
    """On resume from checkpoint ``step``: drop lines of later steps (logged, then killed before
    their checkpoint) and a torn last line, so every step appears once in ``metrics.jsonl``."""
    if not path.exists():
        return
    kept, later, unreadable = [], 0, 0
    for line in path.read_text(errors="replace").splitlines():
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line + "\n")
                continue
            later += 1
        except (ValueError, KeyError, TypeError):
            unreadable += 1
    if unreadable:
        print(f"warning: {path}: dropped {unreadable} unreadable line(s) (a torn or NUL-filled write)", file=sys.stderr)
    if later or unreadable:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(kept))
        os.replace(tmp, path)
