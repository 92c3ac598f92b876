"""Issue #18, kinds 1-2: a run directory belongs to one run, and a resume cannot quietly change it.

Kind 1: the lock (a second run refused, naming the holder; a killed holder's lock is no lock),
a fresh run into a used directory refused unless --overwrite, --resume without a checkpoint
refused, --resume=auto. Kind 2: frozen keys refused on resume, allowed ones recorded in
config_history.jsonl, config.yaml left as the run first wrote it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pawkit.cli import build_parser, main, parse
from pawkit.config import load_config
from pawkit.protocol import UsageError
from pawkit.train.checkpoint import complete_checkpoints
from pawkit.train.rundir import HISTORY, RunDir
from pawkit.train.trainer import train


def tiny(out: Path, *extra: str):
    return load_config("gridnav", overrides=[
        f"trainer.output_dir={out}", "model.name=tiny", "rollout.tasks_per_step=2", "rollout.group_size=2",
        "trainer.eval_every=0", "trainer.early_stop_success=null", "trainer.eval_before_after=false",
        "trainer.dump_trajectories_every=0", "trainer.save_every=1", *extra,
    ])


def cli_train(out: Path, *extra: str) -> subprocess.CompletedProcess:
    """``pawkit train`` in-process (the refusals come before any model loads): exit code and stderr."""
    args = ["train", "--env", "gridnav", "--quiet", "model.name=tiny", f"trainer.output_dir={out}",
            "rollout.tasks_per_step=2", "rollout.group_size=2", "trainer.eval_every=0",
            "trainer.eval_before_after=false", "trainer.dump_trajectories_every=0", *extra]
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(args)
    return subprocess.CompletedProcess(args, code, "", err.getvalue())


def one_line_exit_2(out: subprocess.CompletedProcess, *needles: str) -> None:
    assert out.returncode == 2, out.stderr[-2000:]
    assert "Traceback" not in out.stderr and out.stderr.strip().count("\n") == 0, out.stderr
    assert out.stderr.startswith("error: ")
    for needle in needles:
        assert needle in out.stderr, out.stderr


def steps_logged(out: Path) -> list[float]:
    return [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]


# ------------------------------------------------------------------------------- kind 1


# A process that holds the run directory's flock the way RunDir takes it (no torch import: fast).
HOLDER = """
import fcntl, json, os, socket, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
os.ftruncate(fd, 0)
os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": "now"}).encode())
print("held", flush=True)
sys.stdin.read()
"""


def test_a_second_run_on_one_output_dir_is_refused_naming_the_holder_and_a_killed_holder_leaves_no_lock(tmp_path):
    out = tmp_path / "run"
    out.mkdir()  # an existing folder: a RunDir that created its folder and wrote nothing removes it again
    with RunDir(tiny(out)):  # the first `pawkit train` on this directory
        second = cli_train(out, "trainer.steps=1")
    one_line_exit_2(second, f"{out} is in use by pid {os.getpid()} on ", "one run per trainer.output_dir")
    assert not (out / "metrics.jsonl").exists()  # refused before it wrote anything
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out / ".lock")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(UsageError, match=f"in use by pid {holder.pid} on "):
            RunDir(tiny(out)).__enter__()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    with RunDir(tiny(out)):  # the kernel dropped the killed holder's flock: its lock file is no lock
        assert json.loads((out / ".lock").read_text())["pid"] == os.getpid()


def test_a_fresh_run_into_a_used_dir_is_refused_unless_overwrite_and_overwrite_leaves_only_the_new_run(tmp_path):
    train(tiny(tmp_path, "trainer.steps=2"), show_progress=False)
    again = cli_train(tmp_path, "trainer.steps=1")
    one_line_exit_2(again, "already holds a run (checkpoint step-000002)", "--resume", "--overwrite")
    with pytest.raises(UsageError, match="already holds a run"):
        train(tiny(tmp_path, "trainer.steps=1"), show_progress=False)
    train(tiny(tmp_path, "trainer.steps=1", "seed=1"), show_progress=False, overwrite=True)
    assert [p.name for p in complete_checkpoints(tmp_path)] == ["step-000001"]  # the old step 2 is gone
    assert steps_logged(tmp_path) == [1.0]
    assert "seed: 1" in (tmp_path / "config.yaml").read_text()
    with pytest.raises(UsageError, match="pass one of them"):
        train(tiny(tmp_path, "trainer.steps=1"), show_progress=False, overwrite=True, resume=True)


def test_resume_without_a_checkpoint_is_refused_in_one_line(tmp_path):
    one_line_exit_2(cli_train(tmp_path / "empty", "trainer.steps=1", "--resume"), "--resume: no complete checkpoint in",
                    "--resume=auto")


def test_resume_auto_starts_fresh_then_continues_and_an_attempt_without_checkpoint_is_replaced(tmp_path, capsys):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1.0}\n{"step": 2.0}\n')  # an attempt killed before step 1's checkpoint
    assert [m["step"] for m in train(tiny(tmp_path, "trainer.steps=1"), resume="auto", show_progress=False)] == [1.0]
    assert "held an earlier attempt without a complete checkpoint" in capsys.readouterr().err
    assert [m["step"] for m in train(tiny(tmp_path, "trainer.steps=2"), resume="auto", show_progress=False)] == [2.0]
    assert steps_logged(tmp_path) == [1.0, 2.0]


def test_resume_flag_parses_bare_auto_and_an_override_right_after_it():
    parser = build_parser()
    assert parse(parser, ["train", "--env", "gridnav"]).resume is False
    assert parse(parser, ["train", "--env", "gridnav", "--resume", "--quiet"]).resume is True
    assert parse(parser, ["train", "--env", "gridnav", "--resume=auto"]).resume == "auto"
    args = parse(parser, ["train", "--env", "gridnav", "--resume", "trainer.steps=5", "seed=2"])
    assert args.resume is True and args.resume_overrides == ["trainer.steps=5"] and args.overrides == ["seed=2"]
    with pytest.raises(UsageError, match="--resume takes no value or =auto"):
        parse(parser, ["train", "--env", "gridnav", "--resume=yes"])


# ------------------------------------------------------------------------------- kind 2


def test_resume_refuses_frozen_keys_and_records_allowed_changes_without_rewriting_config_yaml(tmp_path):
    train(tiny(tmp_path, "trainer.steps=1"), show_progress=False)
    original = (tmp_path / "config.yaml").read_text()
    lr = cli_train(tmp_path, "trainer.steps=2", "--resume", "trainer.lr=0.1")  # the example
    one_line_exit_2(lr, "--resume cannot change trainer.lr (0.003 -> 0.1)")
    for override, named in (("model.name=smollm2-135m", "model.name"), ("model.lora.enabled=true", "model.lora.enabled"),
                            ("seed=7", "seed"), ("rollout.group_size=3", "rollout.group_size"),
                            ("env.options={size: 6}", "env.options")):
        with pytest.raises(UsageError, match=f"--resume cannot change {named}"):
            train(tiny(tmp_path, "trainer.steps=2", override), resume=True, show_progress=False)
    assert (tmp_path / "config.yaml").read_text() == original and not (tmp_path / HISTORY).exists()
    resumed = train(tiny(tmp_path, "trainer.steps=2", "trainer.keep_checkpoints=3"), resume=True, show_progress=False)
    assert [m["step"] for m in resumed] == [2.0]
    assert (tmp_path / "config.yaml").read_text() == original  # the run's first config stays the record
    (record,) = [json.loads(line) for line in (tmp_path / HISTORY).read_text().splitlines()]
    assert record["step"] == 1 and record["resumed_from"] == "step-000001"
    assert record["changed"] == {"trainer.keep_checkpoints": {"from": 2, "to": 3}, "trainer.steps": {"from": 1, "to": 2}}


def test_config_changes_compares_env_options_whole_and_ignores_knobs_only_one_version_has():
    from pawkit.train.rundir import config_changes

    old = {"seed": 0, "env": {"options": {}}, "trainer": {"lr": 0.1}}
    new = {"seed": 0, "env": {"options": {"size": 6}}, "trainer": {"lr": 0.1, "new_knob": 1}}
    assert config_changes(old, new) == {"env.options": ({}, {"size": 6})}


def test_a_run_refused_before_writing_anything_leaves_no_folder_behind(tmp_path):
    out = tmp_path / "new-run"
    bad = cli_train(out, "trainer.steps=1", "env.options.max_steps=0")
    one_line_exit_2(bad, "env.options: environment 'gridnav' rejected its options (max_steps=0): ValueError:")
    assert not out.exists()  # not a folder holding only .lock
    existing = tmp_path / "existing"
    existing.mkdir()
    one_line_exit_2(cli_train(existing, "trainer.steps=1", "env.options.size=abc"), "rejected its options (size='abc'): TypeError:")
    assert [p.name for p in existing.iterdir()] == [".lock"]  # a folder the user made stays (with the released lock file)


def test_diverged_weights_stop_in_one_line_naming_the_cause(tmp_path):
    # lr=1e300 is finite (accepted) but overflows in Adam's first step: a stop, not a traceback.
    bad = cli_train(tmp_path / "r", "trainer.lr=1e300", "trainer.steps=2")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr, bad.stderr[-2000:]
    assert bad.stderr.strip().splitlines()[-1] == (
        "error: step 1: the model diverged: torch overflowed (value cannot be converted to type float without overflow); "
        f"lower trainer.lr; complete checkpoints are kept in {tmp_path / 'r' / 'checkpoints'}"
    )


def test_an_unwritable_pawkit_cache_is_one_line_for_generated_env_data(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("PAWKIT_CACHE", str(blocker / "cache"))
    assert main(["play", "--env", "webshop", "--episodes", "1", "env.options.products=37"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: PAWKIT_CACHE={blocker / 'cache'}: cannot write {blocker / 'cache' / 'webshop'} (")
    assert err[0].endswith("); point PAWKIT_CACHE at a writable folder")
