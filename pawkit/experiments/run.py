"""Running a sweep: one ``pawkit train`` subprocess per run (a crash is recorded, the sweep goes
on), optional held-out WM evaluation of the final checkpoint, results appended as runs end.

A child that exits 3 was stopped by a signal before ``trainer.steps`` (its checkpoint kept): it is
recorded as ``stopped``, never ``ok``, so the next ``pawkit sweep`` resumes it and the report does
not tabulate it with the finished runs.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from pawkit.experiments.plan import (
    Run,
    SweepConfig,
    changed_runs,
    eval_command,
    plan_runs,
    train_command,
)
from pawkit.experiments.report import fmt_record_wm
from pawkit.protocol import UsageError
from pawkit.experiments.results import (
    RESULTS_FILE,
    latest_records,
    read_results,
    summarize_run,
)

STDERR_TAIL_LINES = 15
EXIT_INTERRUPTED = 3  # `pawkit train`: stopped by SIGINT/SIGTERM before trainer.steps, checkpoint kept (pawkit.cli)


def child_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _tail(text: str, lines: int = STDERR_TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def execute(sweep: SweepConfig, run: Run) -> dict[str, Any]:
    """Train one run in a subprocess (resuming from its checkpoint if any), then evaluate it."""
    try:
        return _execute(sweep, run)
    except Exception as exc:  # the sweep's own bookkeeping failed (disk full, ...): record, go on
        return {"arm": run.arm, "seed": run.seed, "overrides": run.overrides, "status": "failed",
                "error": f"{type(exc).__name__}: {exc}", "metrics": str(run.run_dir / "metrics.jsonl")}


def _execute(sweep: SweepConfig, run: Run) -> dict[str, Any]:
    from pawkit.config import load_config
    from pawkit.train.checkpoint import (
        latest,  # imports torch: only when a sweep really runs
    )

    target_steps = load_config(sweep.env, sweep.config or None, run.overrides).trainer.steps
    run.run_dir.mkdir(parents=True, exist_ok=True)
    resume = latest(run.run_dir) is not None
    cmd = train_command(sweep, run, resume)
    record: dict[str, Any] = {
        "arm": run.arm, "seed": run.seed, "overrides": run.overrides, "config": run.config, "resumed": resume,
        "command": shlex.join(cmd), "metrics": str(run.run_dir / "metrics.jsonl"), "target_steps": target_steps,
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
    if rc == EXIT_INTERRUPTED:  # not finished: resumed by the next `pawkit sweep`, not in the table
        record.update(status="stopped", returncode=rc, error=_tail(stderr) or "stopped by a signal")
        record.update(summarize_run(run.run_dir))
        return record
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


def run_sweep(sweep: SweepConfig, only: list[str] | None = None, dry_run: bool = False, console=None,
              rerun_changed: bool = False) -> int:
    """Run every missing run of the sweep; returns the number of failed runs.

    Raises UsageError (before any run) when an earlier run was made with another setup than the
    sweep now gives it (``changed_runs``); with ``rerun_changed`` such runs' folders are set aside
    as ``seed<k>.changed-<n>`` (nothing is deleted) and the runs are made again."""
    console = console or Console(stderr=True)
    out = Path(sweep.output_dir)
    results_path = out / RESULTS_FILE
    runs = plan_runs(sweep, only)
    records = latest_records(read_results(results_path))
    changed = changed_runs(runs, records)
    if changed and not rerun_changed:
        run, what = changed[0]
        more = f" (and {len(changed) - 1} more run(s))" if len(changed) > 1 else ""
        raise UsageError(f"{run.arm} seed {run.seed} in {out} was made with another setup than this sweep now gives it: "
                         f"{what}{more}; restore the sweep and config files, or pass --rerun-changed to set the old run "
                         "folders aside and run them again")
    stale = {run.key for run, _ in changed}
    done = {k for k, r in records.items() if r.get("status") == "ok"} - stale
    todo = [r for r in runs if r.key not in done]
    if changed and not dry_run:
        out.mkdir(parents=True, exist_ok=True)
        for run, what in changed:
            kept = "no run folder was left"
            if run.run_dir.exists():
                aside = next(run.run_dir.with_name(f"{run.run_dir.name}.changed-{n}") for n in range(1, 10**6)
                             if not run.run_dir.with_name(f"{run.run_dir.name}.changed-{n}").exists())
                run.run_dir.rename(aside)
                kept = f"old run kept as {aside}"
            with open(results_path, "a") as fh:  # the old result is no longer this run's, even if the new one is cut short
                fh.write(json.dumps({"arm": run.arm, "seed": run.seed, "overrides": run.overrides, "status": "changed",
                                     "error": f"setup changed: {what}", "metrics": str(run.run_dir / "metrics.jsonl")}) + "\n")
            console.print(f"{run.arm} seed {run.seed}: setup changed ({what}); {kept}; running it again",
                          soft_wrap=True, highlight=False, markup=False)
    console.print(
        f"sweep {sweep.name}: {len(runs)} runs ({len(runs) - len(todo)} already done), "
        f"parallel={sweep.parallel}, threads={sweep.threads} → {out}", soft_wrap=True, highlight=False,
    )
    if dry_run:
        from pawkit.train.checkpoint import (
            latest,  # imports torch: not at `pawkit --help` time
        )

        for i, run in enumerate(runs, 1):
            state = "done, skipped" if run.key in done else ("resume" if latest(run.run_dir) and run.key not in stale else "run")
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
        if result["status"] == "stopped":
            console.print(f"[{i}/{total}] {result['arm']} seed {result['seed']}: STOPPED at step {result.get('steps')} "
                          f"of {result.get('target_steps')} (a signal); re-run the sweep to resume it", highlight=False,
                          soft_wrap=True, markup=False)
        elif result["status"] == "ok":
            success = result.get("final_success")
            console.print(
                f"[{i}/{total}] {result['arm']} seed {result['seed']}: ok, {result['steps']} steps, "
                f"success {_fmt(success)}, return {_fmt(result.get('final_return'))}, WM acc {fmt_record_wm(result)}, "
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
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("running: {task.fields[running]}"), console=console,
    )
