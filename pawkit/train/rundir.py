"""A run directory belongs to one run: its lock, what a fresh start or a resume may do with it,
and the history of config changes across resumes.

``RunDir`` (a context manager, entered by ``train`` before the model loads):

* takes an exclusive ``flock`` on ``<output_dir>/.lock`` for the whole run. The kernel drops it
  when the process ends, however it ends, so a killed run leaves no stale lock; the file says
  which process holds it (pid, host, start time) for the one-line refusal of a second run.
* a fresh run into a directory holding a complete checkpoint is refused unless ``overwrite``
  (which deletes the run's files first). Logs of an earlier attempt that never reached a
  checkpoint are removed with a warning (there is nothing to resume).
* ``resume=True`` without a complete checkpoint is refused; ``resume="auto"`` resumes when one
  exists and starts fresh otherwise.
* a resume starts from the newest checkpoint whose checksums verify (newer damaged ones are set
  aside as ``damaged-step-N`` with one warning each), refuses config changes that would make
  the run something else (``FROZEN``), and appends the allowed ones, with the step, to
  ``config_history.jsonl``. ``config.yaml`` and ``run.json`` stay as the run first wrote them.
"""

from __future__ import annotations

import datetime
import contextlib
import fcntl
import json
import os
import shutil
import socket
import sys
from pathlib import Path
from typing import Any

from pawkit.config import Config, check_writable_dir
from pawkit.protocol import UsageError
from pawkit.train import checkpoint
from pawkit.train.runlog import append_lines

LOCK = ".lock"
HISTORY = "config_history.jsonl"
# What pawkit writes into a run directory; --overwrite deletes these and nothing else.
RUN_ENTRIES = (
    "checkpoints", "metrics.jsonl", "run.json", "config.yaml", HISTORY, "trajectories", "env_errors.log",
    "tensorboard", "eval_before_after.json", "curves.png", "wandb", "trackio",
)
# Keys a resume may change: how long to run and how often to evaluate/log/save, memory and
# execution knobs that leave the maths alone. Every other key (model, LoRA, rollout sizes,
# algorithm, PaW, seed, env, lr and its schedule) is frozen by the run's first start.
MUTABLE = (
    "trainer.steps", "trainer.output_dir", "trainer.save_every", "trainer.keep_checkpoints", "trainer.eval_every",
    "trainer.eval_episodes", "trainer.eval_batch_episodes", "trainer.eval_pass_k", "trainer.eval_pass_tasks", "trainer.eval_before_after", "trainer.early_stop_success",
    "trainer.dump_trajectories_every", "trainer.tensorboard", "trainer.report_to", "trainer.max_env_error_rate",
    "trainer.max_nonfinite_in_a_row", "trainer.micro_batch_tokens", "rollout.num_workers", "rollout.step_timeout",
    "rollout.generation_batch_size", "model.device", "model.gradient_checkpointing",
)


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


class RunDir:
    def __init__(self, config: Config, resume: bool | str = False, overwrite: bool = False, main: bool = True):
        if resume not in (True, False, "auto"):
            raise UsageError(f"resume must be true, false or 'auto', not {resume!r}")
        if overwrite and resume:
            raise UsageError("--overwrite starts the run over and --resume continues it: pass one of them")
        self.config, self.resume, self.overwrite, self.main = config, resume, overwrite, main
        self.out = Path(config.trainer.output_dir)
        self.checkpoint: Path | None = None
        self._fd: int | None = None
        self._created = False

    # ------------------------------------------------------------------ lock
    def __enter__(self) -> "RunDir":
        if self.main:
            check_writable_dir(self.out, "trainer.output_dir")  # a file or a read-only place: one line, not FileExistsError
            self._created = not self.out.exists()
            self.out.mkdir(parents=True, exist_ok=True)
            self._lock()
        try:
            self._prepare()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the flock
            self._fd = None
            # A run refused or failed before writing anything leaves no folder holding only the lock.
            if self._created and [p.name for p in self.out.iterdir()] == [LOCK]:
                with contextlib.suppress(OSError):
                    (self.out / LOCK).unlink()
                    self.out.rmdir()

    def _lock(self) -> None:
        path = self.out / LOCK
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = (os.pread(fd, 4096, 0).decode(errors="replace").splitlines() or [""])[0]
            os.close(fd)
            try:
                who = json.loads(holder)
                who = f"pid {who['pid']} on {who['host']} (since {who['since']})"
            except (ValueError, KeyError, TypeError):
                who = "another process"
            raise UsageError(f"{self.out} is in use by {who}: one run per trainer.output_dir") from None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": _now()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode() + b"\n", 0)
        self._fd = fd

    # ---------------------------------------------------------- start or resume
    def _prepare(self) -> None:
        if self.main:
            checkpoint.clean_leftovers(self.out)
        found = checkpoint.complete_checkpoints(self.out)
        if self.resume is True and not found:
            raise UsageError(
                f"--resume: no complete checkpoint in {checkpoint.checkpoint_root(self.out)}; "
                "drop --resume to start fresh, or pass --resume=auto"
            )
        if self.resume and found:
            self._resume()
        elif found and not self.overwrite:
            raise UsageError(
                f"{self.out} already holds a run (checkpoint {found[-1].name}): pass --resume to continue it, "
                "--overwrite to delete it and start over, or choose another trainer.output_dir"
            )
        elif self.main:
            self._clear(warn=not self.overwrite)

    def _clear(self, warn: bool) -> None:
        present = [name for name in RUN_ENTRIES if (self.out / name).exists()]
        if present and warn:
            print(f"warning: {self.out} held an earlier attempt without a complete checkpoint; removed its "
                  f"{', '.join(present)} to start fresh", file=sys.stderr)
        for name in present:
            path = self.out / name
            if path.is_dir():
                for ckpt in checkpoint.complete_checkpoints(self.out) if name == "checkpoints" else ():
                    checkpoint.remove(ckpt)  # markers first: a kill mid-way never leaves one to resume
                shutil.rmtree(path)
            else:
                path.unlink()

    def _resume(self) -> None:
        path, skipped = checkpoint.resume_point(self.out)
        if path is None:
            raise UsageError(f"cannot resume: {skipped[0][1]} (and no older checkpoint is intact)")
        for bad, problem in skipped:
            where = checkpoint.set_aside(bad).name if self.main else bad.name
            print(f"warning: skipped damaged checkpoint {bad.name} ({problem}); kept as {where}; "
                  f"resuming from {path.name}", file=sys.stderr)
        saved = checkpoint.saved_config(path) or _run_json_config(self.out)
        changes = config_changes(saved, self.config.model_dump(mode="json")) if saved else {}
        frozen = sorted(k for k in changes if k not in MUTABLE)
        if frozen:
            shown = ", ".join(f"{k} ({_short(changes[k][0])} -> {_short(changes[k][1])})" for k in frozen[:4])
            more = f" and {len(frozen) - 4} more" if len(frozen) > 4 else ""
            raise UsageError(
                f"--resume cannot change {shown}{more}: the run in {self.out} was started with them "
                "(see docs/training.md, 'Resuming'); start a new run for a different setup"
            )
        if self.main:
            step = int(path.name.split("-")[1])
            record = {"step": step, "resumed_from": path.name, "time": _now(),
                      "changed": {k: {"from": v[0], "to": v[1]} for k, v in sorted(changes.items())}}
            append_lines(self.out / HISTORY, [json.dumps(record) + "\n"], required=True)
        self.checkpoint = path


def config_changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Dotted key -> (old, new) for every key of both configs whose value differs. A key only
    one side has (a knob added or removed by a pawkit upgrade) is not a change of this run;
    ``env.options`` is compared whole (it belongs to the adapter)."""
    a, b = _flatten(old), _flatten(new)
    return {k: (a[k], b[k]) for k in sorted(set(a) & set(b)) if a[k] != b[k]}


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and f"{prefix}{key}" != "env.options":
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _run_json_config(out: Path) -> dict[str, Any] | None:
    try:
        return json.loads((out / "run.json").read_text())["config"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
