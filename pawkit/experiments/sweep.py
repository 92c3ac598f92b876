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
resumes the sweep — unless the run was made with another setup than the sweep now gives it (an
edited override or config file: its run.json config differs): then the sweep refuses before any
run, and ``--rerun-changed`` sets such run folders aside (``seed<k>.changed-<n>``) and runs them again; a run that was interrupted continues from its latest checkpoint (``--resume``).
Failed runs are tried again; the report reads the last line of each (arm, seed).
"""

from __future__ import annotations

import argparse

from pawkit.experiments.plan import load_sweep
from pawkit.experiments.report import write_report
from pawkit.experiments.run import run_sweep


def cmd_sweep(args: argparse.Namespace) -> int:
    sweep = load_sweep(args.config)
    only = [a for item in args.only or [] for a in item.split(",") if a]
    failures = 0
    if not args.report_only:
        failures = run_sweep(sweep, only=only, dry_run=args.dry_run, rerun_changed=args.rerun_changed)
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
    p.add_argument("--rerun-changed", action="store_true", help="runs made with another setup than the sweep now "
                   "gives them (edited overrides or config files) are set aside and run again (default: refuse)")
    p.set_defaults(func=cmd_sweep)
    return p
