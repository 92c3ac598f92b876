"""Sweep planning: the validated sweep file (arms × seeds) and the command line of each run.

The sweep file format is documented in ``pawkit.experiments.sweep``.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pawkit import plugins
from pawkit.config import ConfigError, load_config, read_yaml
from pawkit.protocol import UsageError

ARM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


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
    pairs: list[tuple[str, str]] = Field(default_factory=list, description="[treatment arm, base arm] pairs: the report adds treatment − base per seed (paired by seed), its 95 % interval and a sign-flip test")

    @model_validator(mode="after")
    def _pairs_name_arms(self):
        for treatment, base in self.pairs:
            for arm in (treatment, base):
                if arm not in self.arms:
                    raise ValueError(f"pairs: {arm!r} is not an arm of this sweep ({', '.join(self.arms)})")
            if treatment == base:
                raise ValueError(f"pairs: {treatment!r} is paired with itself")
        return self

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
    config: dict = field(default_factory=dict, compare=False, repr=False)  # resolved, as config.model_dump(mode="json")

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
                config = load_config(sweep.env, sweep.config or None, overrides)
                check_names(config)
            except UsageError as exc:
                raise ConfigError(f"arm {arm!r}: {str(exc).splitlines()[0]}") from None
            runs.append(Run(arm, seed, overrides, out / "runs" / arm / f"seed{seed}", config.model_dump(mode="json")))
    return runs


def check_names(config) -> None:
    """Unknown env or strategy names fail the whole sweep before the first run, not hours in."""

    plugins.get("env", config.env.name)
    plugins.get("advantage_estimator", config.algorithm.name)
    if config.paw.enabled:
        for kind, name in (("selector", config.paw.selector), ("wm_loss", config.paw.wm_loss), ("balancer", config.paw.balancer)):
            plugins.get(kind, name)


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
    # the WM-accuracy pass reads the greedy episodes only: no sampled (pass@k) evaluation
    cmd += [*run.overrides, "trainer.eval_pass_k=[]", "--model", str(model_dir), "--episodes", str(sweep.wm_eval_episodes), "--json"]
    return cmd


# Keys that change how a run executes or what it writes, never its numbers: a change of these
# alone does not make an earlier run of a sweep stale.
NO_RESULT_KEYS = frozenset({
    "trainer.output_dir", "trainer.save_every", "trainer.keep_checkpoints", "trainer.tensorboard", "trainer.report_to",
    "trainer.dump_trajectories_every", "rollout.num_workers", "rollout.step_timeout",
})


def changed_runs(runs: list[Run], records: dict[tuple[str, int], dict[str, Any]]) -> list[tuple[Run, str]]:
    """The planned runs whose earlier result or folder was made with another setup, each with what
    changed.

    The earlier setup is the run folder's run.json config, else the record's stored ``config``
    (so an edit of a config file the sweep merges counts, not only of the sweep's overrides),
    compared key by key except ``NO_RESULT_KEYS``; a record older than stored configs is compared
    by its overrides. A finished run is stale on any such change; an unfinished one only on a
    change that ``--resume`` refuses (outside ``rundir.MUTABLE``): it resumes with the others. (A
    key that only one side has, added by a pawkit upgrade, is not a change: ``config_changes``.)"""
    from pawkit.train.rundir import MUTABLE, _run_json_config, config_changes

    out = []
    for run in runs:
        record = records.get(run.key) or {}
        saved = (_run_json_config(run.run_dir) if run.run_dir.exists() else None) or record.get("config")
        if saved and run.config:
            changes = {k: v for k, v in config_changes(saved, run.config).items() if k not in NO_RESULT_KEYS}
            finished = record.get("status") == "ok"
            if changes and (finished or any(k not in MUTABLE for k in changes)):
                out.append((run, ", ".join(f"{k} {v[0]!r} -> {v[1]!r}" for k, v in list(changes.items())[:3])
                            + (f" and {len(changes) - 3} more" if len(changes) > 3 else "")))
        elif record.get("overrides") not in (None, run.overrides) and record.get("status") != "changed":
            out.append((run, f"overrides {' '.join(record['overrides'])!r} -> {' '.join(run.overrides)!r}"))
    return out
