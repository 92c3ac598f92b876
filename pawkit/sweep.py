"""``pawkit sweep``: a grid of arms × seeds, one training subprocess per run, results appended.

A sweep file (YAML, validated here)::

    name: gridnav
    output_dir: results/gridnav        # runs/<arm>/seed<k>/, results.jsonl, report.md, <name>-curves.png
    env: gridnav
    config: [configs/gridnav.yaml]     # optional overlays, merged in order (as `pawkit train --config`)
    overrides: [trainer.steps=40]      # shared by every arm
    seeds: [0, 1, 2]
    threads: 1                         # torch/OpenMP threads per run (OMP_NUM_THREADS)
    parallel: 1                        # runs at once (parallel × threads should not exceed the cores)
    wm_eval_episodes: 32               # held-out WM token accuracy of the final checkpoint (0 = off)
    arms:                              # name -> extra overrides
      grpo: []
      grpo+paw: [paw.enabled=true]

Paths (``config``, ``output_dir``) are relative to the current directory, as for ``pawkit train``:
run sweeps from the repository root. Each run is
``python -m pawkit.cli train ... seed=<k> trainer.output_dir=<run dir> --quiet`` in its own
process, so a crash is recorded (status ``failed`` with the tail of its stderr) and the sweep
goes on. A run with an ``ok`` line in ``results.jsonl`` is skipped, so re-running the same command
resumes the sweep; a run that was interrupted continues from its latest checkpoint (``--resume``).
Failed runs are tried again; the report reads the last line of each (arm, seed).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pawkit.config import ConfigError, load_config, read_yaml
from pawkit.protocol import UsageError

RESULTS_FILE = "results.jsonl"
# Kept per run in results.jsonl so the report can redraw learning curves after the run folders
# are gone (results files get committed; run folders with checkpoints do not).
CURVE_KEYS = ("eval/success_rate", "success_rate", "eval/mean_return", "mean_return")
ARM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
STDERR_TAIL_LINES = 15


class SweepConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    output_dir: str
    env: str
    config: list[str] = Field(default_factory=list, description="config files merged in order")
    overrides: list[str] = Field(default_factory=list, description="overrides shared by every arm")
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    arms: dict[str, list[str]] = Field(min_length=1)
    threads: int = Field(1, ge=1, description="OMP_NUM_THREADS of each run")
    parallel: int = Field(1, ge=1, description="runs at once")
    wm_eval_episodes: int = Field(32, ge=0, description="episodes for `pawkit eval` of the final checkpoint; 0 = off")
    timeout: float | None = Field(None, gt=0, description="seconds before a run is killed and recorded as failed")

    @field_validator("arms")
    @classmethod
    def _arm_names(cls, arms: dict[str, list[str]]) -> dict[str, list[str]]:
        for name in arms:
            if not ARM_NAME.match(name):
                raise ValueError(f"arm name {name!r} must be letters, digits, '_', '.', '+' or '-' (it names a folder)")
        return arms

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds repeat: {seeds}")
        return seeds


def load_sweep(path: str | Path) -> SweepConfig:
    """Read and validate a sweep file; every problem is one line naming the key (ConfigError)."""
    path = Path(path)
    data = read_yaml(path, what="sweep file", empty_ok=False)
    try:
        sweep = SweepConfig.model_validate(data)
    except ValidationError as err:
        lines = []
        for e in err.errors():
            key = ".".join(str(p) for p in e["loc"]) or "(top level)"
            if e["type"] == "extra_forbidden":
                lines.append(f"{path}: unknown sweep key '{key}'")
            elif e["type"] == "missing":
                lines.append(f"{path}: missing sweep key '{key}'")
            else:
                lines.append(f"{path}: invalid value for '{key}': {e['msg'].removeprefix('Value error, ')}")
        raise ConfigError("\n".join(lines)) from None
    return sweep


@dataclass(frozen=True)
class Run:
    arm: str
    seed: int
    overrides: list[str]  # shared + arm + seed (without the output dir)
    run_dir: Path

    @property
    def key(self) -> tuple[str, int]:
        return (self.arm, self.seed)


def plan_runs(sweep: SweepConfig, only: list[str] | None = None) -> list[Run]:
    """Every arm × seed, seed-major (one seed of every arm first), each validated as a config."""
    if only:
        unknown = [a for a in only if a not in sweep.arms]
        if unknown:
            raise UsageError(f"unknown arm {unknown[0]!r}; this sweep has: {', '.join(sweep.arms)}")
    arms = {name: o for name, o in sweep.arms.items() if not only or name in only}
    out = Path(sweep.output_dir)
    runs = []
    for seed in sweep.seeds:
        for arm, extra in arms.items():
            overrides = [*sweep.overrides, *extra, f"seed={seed}"]
            try:
                check_names(load_config(sweep.env, sweep.config or None, overrides))
            except UsageError as exc:
                raise ConfigError(f"arm {arm!r}: {str(exc).splitlines()[0]}") from None
            runs.append(Run(arm, seed, overrides, out / "runs" / arm / f"seed{seed}"))
    return runs


def check_names(config) -> None:
    """Unknown env or strategy names fail the whole sweep before the first run, not hours in."""
    from pawkit import plugins

    plugins.get("env", config.env.name)
    plugins.get("advantage_estimator", config.algorithm.name)
    if config.paw.enabled:
        for kind, name in (("selector", config.paw.selector), ("wm_loss", config.paw.wm_loss), ("balancer", config.paw.balancer)):
            plugins.get(kind, name)


def read_results(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by a kill: ignore, the run will be redone
                continue
    return records


def latest_records(records: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    """The last record of each (arm, seed)."""
    return {(r["arm"], int(r["seed"])): r for r in records}


def train_command(sweep: SweepConfig, run: Run, resume: bool) -> list[str]:
    cmd = [sys.executable, "-m", "pawkit.cli", "train", "--env", sweep.env]
    for path in sweep.config:
        cmd += ["--config", path]
    cmd += [*run.overrides, f"trainer.output_dir={run.run_dir}", "--quiet"]
    if resume:
        cmd.append("--resume")
    return cmd


def eval_command(sweep: SweepConfig, run: Run, model_dir: Path) -> list[str]:
    cmd = [sys.executable, "-m", "pawkit.cli", "eval", "--env", sweep.env]
    for path in sweep.config:
        cmd += ["--config", path]
    cmd += [*run.overrides, "--model", str(model_dir), "--episodes", str(sweep.wm_eval_episodes), "--json"]
    return cmd


def child_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _tail(text: str, lines: int = STDERR_TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def read_metrics(path: Path) -> list[dict[str, float]]:
    """metrics.jsonl, one record per step (a resumed run re-logs steps after its checkpoint: last wins)."""
    by_step: dict[int, dict[str, float]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                m = json.loads(line)
            except json.JSONDecodeError:
                continue
            by_step[int(m["step"])] = m
    return [by_step[s] for s in sorted(by_step)]


def metric_curve(metrics: list[dict[str, float]], key: str) -> list[list]:
    """[[step, value], ...] of ``key`` over the logged steps that have it."""
    return [[int(m["step"]), m[key]] for m in metrics if key in m]


def summarize_run(run_dir: Path) -> dict[str, Any]:
    """Final numbers of one finished run from its metrics.jsonl and eval_before_after.json."""
    metrics = read_metrics(run_dir / "metrics.jsonl")
    evals = [m for m in metrics if "eval/success_rate" in m]
    last = metrics[-1] if metrics else {}
    out: dict[str, Any] = {
        "steps": int(last.get("step", 0)),
        "final_eval_step": int(evals[-1]["step"]) if evals else None,
        "final_eval_success": evals[-1]["eval/success_rate"] if evals else None,
        "final_eval_return": evals[-1].get("eval/mean_return") if evals else None,
        "final_train_success": last.get("success_rate"),
        "final_train_return": last.get("mean_return"),
        "train_wm_accuracy": last.get("paw/wm_token_accuracy"),
        "curves": {key: metric_curve(metrics, key) for key in CURVE_KEYS},
    }
    if evals and "eval/wm_token_accuracy" in evals[-1]:  # the trainer's own held-out eval measured it
        out["wm_accuracy"] = evals[-1]["eval/wm_token_accuracy"]
    before_after = run_dir / "eval_before_after.json"
    if before_after.exists():
        data = json.loads(before_after.read_text())
        after, before = data.get("after") or {}, data.get("before") or {}
        out["after_success"] = after.get("eval/success_rate")
        out["after_return"] = after.get("eval/mean_return")
        out["before_success"] = before.get("eval/success_rate")
    # The headline numbers: the after-training eval when there is one, else the last periodic eval,
    # else the last training batch.
    out["final_success"] = _first(out.get("after_success"), out["final_eval_success"], out["final_train_success"])
    out["final_return"] = _first(out.get("after_return"), out["final_eval_return"], out["final_train_return"])
    return out


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def execute(sweep: SweepConfig, run: Run) -> dict[str, Any]:
    """Train one run in a subprocess (resuming from its checkpoint if any), then evaluate it."""
    try:
        return _execute(sweep, run)
    except Exception as exc:  # the sweep's own bookkeeping failed (disk full, ...): record, go on
        return {"arm": run.arm, "seed": run.seed, "overrides": run.overrides, "status": "failed",
                "error": f"{type(exc).__name__}: {exc}", "metrics": str(run.run_dir / "metrics.jsonl")}


def _execute(sweep: SweepConfig, run: Run) -> dict[str, Any]:
    from pawkit.checkpoint import latest

    run.run_dir.mkdir(parents=True, exist_ok=True)
    resume = latest(run.run_dir) is not None
    cmd = train_command(sweep, run, resume)
    record: dict[str, Any] = {
        "arm": run.arm, "seed": run.seed, "overrides": run.overrides, "resumed": resume,
        "command": shlex.join(cmd), "metrics": str(run.run_dir / "metrics.jsonl"),
    }
    env = child_env(sweep.threads)
    started = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=sweep.timeout)
        rc, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        rc, stdout = -9, _text(exc.stdout)
        stderr = _text(exc.stderr) + f"\nkilled by the sweep after timeout={sweep.timeout} s"
    record["wall_seconds"] = round(time.perf_counter() - started, 2)
    (run.run_dir / "train.log").write_text(stdout + ("\n--- stderr ---\n" + stderr if stderr else ""))
    if rc != 0:
        record.update(status="failed", returncode=rc, error=_tail(stderr) or f"exit code {rc}")
        record.update(summarize_run(run.run_dir))
        return record
    record["status"] = "ok"
    record.update(summarize_run(run.run_dir))
    checkpoint = latest(run.run_dir)
    if sweep.wm_eval_episodes and checkpoint is not None and record.get("wm_accuracy") is None:
        started = time.perf_counter()
        try:
            proc = subprocess.run(eval_command(sweep, run, checkpoint / "model"), capture_output=True, text=True,
                                  env=env, timeout=sweep.timeout)
        except subprocess.TimeoutExpired:
            proc = subprocess.CompletedProcess([], -9, "", f"eval killed after timeout={sweep.timeout} s")
        record["eval_seconds"] = round(time.perf_counter() - started, 2)
        try:
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            record["wm_accuracy"] = result["wm_token_accuracy"]
            record["wm_target_prob"] = result["wm_target_prob"]
            record["heldout_success"] = result["success_rate"]
        except (IndexError, KeyError, json.JSONDecodeError):
            record["eval_error"] = _tail(proc.stderr) or f"exit code {proc.returncode}"
    return record


def _text(data: Any) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else str(data)


def run_sweep(sweep: SweepConfig, only: list[str] | None = None, dry_run: bool = False, console=None) -> int:
    """Run every missing run of the sweep; returns the number of failed runs."""
    from rich.console import Console

    console = console or Console(stderr=True)
    out = Path(sweep.output_dir)
    results_path = out / RESULTS_FILE
    runs = plan_runs(sweep, only)
    done = {k for k, r in latest_records(read_results(results_path)).items() if r.get("status") == "ok"}
    todo = [r for r in runs if r.key not in done]
    console.print(
        f"sweep {sweep.name}: {len(runs)} runs ({len(runs) - len(todo)} already done), "
        f"parallel={sweep.parallel}, threads={sweep.threads} → {out}", soft_wrap=True, highlight=False,
    )
    if dry_run:
        from pawkit.checkpoint import latest

        for i, run in enumerate(runs, 1):
            state = "done, skipped" if run.key in done else ("resume" if latest(run.run_dir) else "run")
            console.print(f"[{i}/{len(runs)}] {run.arm} seed {run.seed} ({state}): {shlex.join(train_command(sweep, run, state == 'resume'))}",
                          soft_wrap=True, highlight=False)
        return 0
    out.mkdir(parents=True, exist_ok=True)
    failures = 0
    lock = threading.Lock()
    position = {run.key: i for i, run in enumerate(runs, 1)}
    total = len(runs)

    def record(result: dict[str, Any]) -> None:
        nonlocal failures
        with lock, open(results_path, "a") as fh:
            fh.write(json.dumps(result) + "\n")
        failures += result["status"] != "ok"
        i = position[(result["arm"], result["seed"])]
        if result["status"] == "ok":
            success = result.get("final_success")
            wm = result.get("wm_accuracy")
            console.print(
                f"[{i}/{total}] {result['arm']} seed {result['seed']}: ok, {result['steps']} steps, "
                f"success {_fmt(success)}, return {_fmt(result.get('final_return'))}, WM acc {_fmt(wm)}, "
                f"{result['wall_seconds']:.1f} s", highlight=False, soft_wrap=True,
            )
        else:
            from rich.markup import escape

            last = escape(result["error"].splitlines()[-1]) if result["error"] else ""
            console.print(f"\\[{i}/{total}] {escape(result['arm'])} seed {result['seed']}: [red]FAILED[/red] ({last})", highlight=False, soft_wrap=True, markup=True)

    with _sweep_progress(console) as progress:
        job = progress.add_task(f"sweep {sweep.name}", total=total, completed=total - len(todo), running="")
        running: dict[Future, Run] = {}
        pending = list(todo)
        with ThreadPoolExecutor(max_workers=sweep.parallel) as pool:
            try:
                while pending or running:
                    while pending and len(running) < sweep.parallel:
                        run = pending.pop(0)
                        running[pool.submit(execute, sweep, run)] = run
                    progress.update(job, running=", ".join(
                        f"{r.arm} seed {r.seed} ({position[r.key]}/{total})" for r in running.values()))
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        running.pop(future)
                        record(future.result())
                        progress.advance(job)
            except KeyboardInterrupt:
                # The children got the same SIGINT: they checkpoint and exit; their runs are not
                # recorded, so the next `pawkit sweep` resumes them.
                console.print("interrupted: waiting for the running runs to checkpoint; re-run the same command to resume")
                pending.clear()
                raise
    return failures


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _sweep_progress(console):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("running: {task.fields[running]}"), console=console,
    )


def cmd_sweep(args: argparse.Namespace) -> int:
    from pawkit.report import write_report

    sweep = load_sweep(args.config)
    only = [a for item in args.only or [] for a in item.split(",") if a]
    failures = 0
    if not args.report_only:
        failures = run_sweep(sweep, only=only, dry_run=args.dry_run)
        if args.dry_run:
            return 0
    report = write_report(sweep)
    print(f"report: {report}")
    return 1 if failures else 0


def add_command(subparsers) -> argparse.ArgumentParser:
    help = "run a grid of arms × seeds (one training process each) and write a report"
    p = subparsers.add_parser("sweep", help=help, description=help)
    p.add_argument("--config", required=True, help="sweep YAML file (see configs/sweeps/)")
    p.add_argument("--dry-run", action="store_true", help="print the runs and their commands, run nothing")
    p.add_argument("--only", action="append", metavar="ARM", help="run only this arm (repeat or comma-separate)")
    p.add_argument("--report-only", action="store_true", help="write report.md and the plot from results.jsonl")
    p.set_defaults(func=cmd_sweep)
    return p
