"""Run outputs: live progress, ``metrics.jsonl`` and the ``trainer.report_to`` trackers, trajectory dumps.

Live output (stderr): on a terminal a rich bar plus a compact line per step; otherwise (a log
file, a cluster job) one plain line per step and per evaluation. At the end ``finish`` writes
``curves.png`` and prints the before/after table, its path and the ``pawkit view`` command.

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
        self.trackers: list = []

    def __enter__(self) -> "RunLogger":
        self.out.mkdir(parents=True, exist_ok=True)
        if self.start > 0:
            _forget_steps_after(self.out / "metrics.jsonl", self.start)
        self.metrics_path = self.out / "metrics.jsonl"
        repair_tail(self.metrics_path)
        from pawkit.train.trackers import open_trackers

        self.trackers = open_trackers(self.out, self.config)
        if self.enabled and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self.progress = Progress(
                TextColumn("train {task.fields[env]}", markup=False), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TextColumn("{task.fields[status]}", markup=False), console=Console(stderr=True),
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
        for tracker in self.trackers:
            tracker.log(metrics, int(metrics["step"]))
        if not self.enabled:
            return
        line = step_line(metrics, self.config.trainer.steps)
        if self.progress is not None:
            self.progress.console.print(line, markup=False, highlight=False)
            status = f"success {metrics['rollout/success_rate']:.2f} {metrics['perf/tokens_per_second']:.0f} tok/s"
            self.progress.update(self.task, completed=int(metrics["step"]), status=status)
        else:
            print(line, file=sys.stderr, flush=True)
        if "eval/success_rate" in metrics:
            self.eval_line(metrics, f"after step {int(metrics['step'])}")

    def eval_line(self, metrics: dict[str, float], when: str) -> None:
        """One line for an evaluation (its ``eval/`` keys), above the bar or on plain stderr."""
        line = (f"eval {when}: success {metrics['eval/success_rate']:.3f} return {metrics['eval/mean_return']:.3f} "
                f"invalid {metrics.get('eval/invalid_action_rate', 0.0):.3f} ({metrics.get('perf/eval_seconds', 0.0):.1f}s)")
        if self.progress is not None:
            self.progress.console.print(line, markup=False, highlight=False)
        elif self.enabled:
            print(line, file=sys.stderr, flush=True)

    def dump_episodes(self, step: int, episodes: Sequence[Episode], views: Sequence[dict] | None = None) -> None:
        """``trajectories/step-N.jsonl`` (one Episode per line) and, given ``views``
        (pawkit/train/wm_view.py, one per episode), ``step-N.view.jsonl`` beside it.
        Auxiliary: a failed dump (e.g. a full disk) warns and never costs the step's checkpoint."""
        folder = self.out / "trajectories"
        files = [(folder / f"step-{step:06d}.jsonl", [e.to_json() for e in episodes])]
        if views is not None:
            files.append((folder / f"step-{step:06d}.view.jsonl", [json.dumps(v) for v in views]))
        for final, lines in files:
            tmp = folder / f".{final.name}.tmp"
            try:
                folder.mkdir(exist_ok=True)
                with open(tmp, "w") as fh:
                    fh.writelines(line + "\n" for line in lines)
                os.replace(tmp, final)
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                print(f"warning: could not write {final} ({exc}); the run goes on without it", file=sys.stderr)

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()
        for tracker in self.trackers:
            tracker.close()


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


def step_line(metrics: dict[str, float], steps: int) -> str:
    """The compact per-step line: step, success, return, invalid rate, WM accuracy, λ and the share of
    target tokens the clipped MAE acts on (PaW), step time."""
    parts = [f"step {int(metrics['step'])}/{steps}", f"success {metrics['rollout/success_rate']:.2f}",
             f"return {metrics['rollout/mean_return']:.2f}", f"invalid {metrics.get('rollout/invalid_action_rate', 0.0):.2f}"]
    if "paw/wm_token_accuracy" in metrics:
        parts.append(f"wm_acc {metrics['paw/wm_token_accuracy']:.3f}")
    if "paw/lambda_mean" in metrics:
        parts.append(f"λ {metrics['paw/lambda_mean']:.2f}")
    if "paw/cmae_active" in metrics:  # share of WM target tokens the clipped MAE acts on (ε < p ≤ ρ)
        parts.append(f"cmae_active {metrics['paw/cmae_active']:.2f}")
    parts.append(f"{metrics.get('perf/step_seconds', 0.0):.1f}s")
    return "  ".join(parts)


CURVES = [("rollout/success_rate", "training success"), ("rollout/mean_return", "training return"),
          ("rollout/invalid_action_rate", "invalid rate"), ("paw/wm_token_accuracy", "WM accuracy (training)")]


def plot_run(out: Path) -> Path | None:
    """``out/curves.png`` from ``metrics.jsonl`` (training-batch success, return, invalid rate, WM
    accuracy per step; eval success as dots; the held-out mean return before (step 0) and after
    training with its 95 % interval, from ``eval_before_after.json``); None when there is nothing
    to plot or it cannot be written."""
    path = out / "metrics.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    for key, label in CURVES:
        points = [(r["step"], r[key]) for r in rows if key in r]
        if points:
            ax.plot(*zip(*points), label=label, marker="." if len(points) < 20 else None)
    evals = [(r["step"], r["eval/success_rate"]) for r in rows if "eval/success_rate" in r]
    if evals:
        ax.scatter(*zip(*evals), label="eval success", color="black", zorder=3)
    held_out = _before_after_returns(out, rows[-1]["step"])
    if held_out:
        steps, means, errors = zip(*held_out)
        ax.errorbar(steps, means, yerr=list(zip(*errors)), fmt="D", color="tab:purple", capsize=3, zorder=4,
                    label="eval mean return (before/after, 95% CI)")
    ax.set_xlabel("step")
    ax.legend(fontsize=7)
    fig.tight_layout()
    target = out / "curves.png"
    try:
        fig.savefig(target, dpi=100)
    except OSError as exc:
        print(f"warning: could not write {target} ({exc})", file=sys.stderr)
        return None
    finally:
        plt.close(fig)
    return target


def _with_ci(row: dict, key: str) -> str:
    """``0.420 [0.283, 0.570]``: ``eval/<key>`` and its 95 % interval when the evaluation recorded one."""
    stem = key.removesuffix("_rate")
    low, high = row.get(f"eval/{stem}_ci95_low"), row.get(f"eval/{stem}_ci95_high")
    value = row[f"eval/{key}"]
    return f"{value:.3f}" if low is None or high is None else f"{value:.3f} [{low:.3f}, {high:.3f}]"


def _before_after_returns(out: Path, last_step: int) -> list[tuple[int, float, tuple[float, float]]]:
    """(step, mean return, (minus, plus) error bar) of the before (step 0) and after evaluations."""
    try:
        report = json.loads((out / "eval_before_after.json").read_text())
    except (OSError, ValueError):
        return []
    points = []
    for step, row in ((0, report.get("before")), (report.get("steps", last_step), report.get("after"))):
        if row and "eval/mean_return" in row:
            m = row["eval/mean_return"]
            low, high = row.get("eval/mean_return_ci95_low", m), row.get("eval/mean_return_ci95_high", m)
            points.append((step, m, (m - low, high - m)))
    return points


def finish(config: Config, out: Path, before: dict | None, after: dict | None, show: bool,
           change: dict | None = None) -> None:
    """The end of a run: ``curves.png``, and (``show``) the before/after table with 95 % intervals
    (Wilson for success, t for mean return), the paired change in mean return over the same
    episodes (``change``, from ``pawkit.train.evaluate.paired_change``), its path and the view command."""
    png = plot_run(out)
    if not show:
        return
    if after is not None:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"{config.env.name}: {config.trainer.eval_episodes} {config.env.eval_split} episodes "
                            f"(temperature {config.rollout.eval_temperature}; [95% interval])")
        for col in ("", "success", "mean return", "invalid rate"):
            table.add_column(col)
        for name, row in (("before", before), ("after", after)):
            cells = [_with_ci(row, k) if row else "n/a (resumed)" for k in ("success_rate", "mean_return")]
            table.add_row(name, *cells, f"{row.get('eval/invalid_action_rate', 0.0):.3f}" if row else "")
        Console(soft_wrap=True).print(table)
        first = f"{before['eval/success_rate']:.3f}" if before else "n/a (resumed)"
        print(f"{config.env.name}: success on {config.trainer.eval_episodes} {config.env.eval_split} episodes "
              f"(temperature {config.rollout.eval_temperature}): before {first}, after {after['eval/success_rate']:.3f} "
              f"(mean return {(before or {}).get('eval/mean_return', float('nan')):.3f} -> {after['eval/mean_return']:.3f})")
        if change is not None:
            print(f"mean return change {change['mean_return_change']:+.3f} (95% interval {change['ci95_low']:+.3f} to "
                  f"{change['ci95_high']:+.3f}, sign-flip p = {change['p_value']:.2g}) over the same {change['pairs']} episodes")
    if png is not None:
        print(f"learning curves: {png}")
    print(f"open the run: pawkit view {out}")
