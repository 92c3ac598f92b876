"""The README's "Using it" commands, run literally and in order (issue #26).

Each line of the code block after ``## Using it`` is split with ``shlex`` (a ``#`` comment
dropped) and run in one temporary working directory, in process through ``pawkit.cli.main``
(a subprocess per line would cost a torch import each). The repo's ``configs/`` is copied
there, because ``pawkit sweep --config configs/sweeps/gridnav.yaml`` is a relative path.

Only these speed overrides are appended, nothing else changes:

* ``pawkit train``: ``rollout.tasks_per_step=2 rollout.group_size=2 trainer.eval_episodes=2
  trainer.save_every=1`` and the README's lengths scaled down: the default 200 steps become
  ``trainer.steps=1``, a line's ``trainer.steps=300`` becomes ``trainer.steps=2`` (so a resume
  still has a step to take).
* ``pawkit eval``: ``--episodes 2``.
* ``pawkit sweep``: the copied ``configs/sweeps/gridnav.yaml`` is the real one cut to its first
  arm and first seed, with the run sizes above, 1 step and ``wm_eval_episodes: 0``
  (``run.py`` runs each arm as a subprocess: a second one for the eval would double its cost).
* ``accelerate launch --multi_gpu``: not run. It needs GPUs, and two CPU processes each
  importing torch take longer than this test's budget on the 2-core CI machine; its arguments
  are checked by accelerate's and pawkit's parsers instead (``test_every_readme_line_parses``).
"""

from __future__ import annotations

import re
import shlex
import shutil
import time
from pathlib import Path

import pytest
import yaml

from pawkit import cli

ROOT = Path(__file__).resolve().parents[1]
TRAIN_SPEED = ["rollout.tasks_per_step=2", "rollout.group_size=2", "trainer.eval_episodes=2", "trainer.save_every=1"]
STEPS = {None: "1", "300": "2"}  # README trainer.steps (None: configs/gridnav.yaml's 200) -> steps here


def readme_lines() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Using it", 1)[1]
    block = re.search(r"^```[^\n]*\n(.*?)^```", section, re.S | re.M)
    assert block, "no code block after '## Using it' in README.md"
    lines = [shlex.split(line, comments=True) for line in block.group(1).splitlines()]
    return [argv for argv in lines if argv]


def pawkit_argv(argv: list[str]) -> list[str]:
    """The pawkit arguments of a README line: after ``pawkit`` or ``-m pawkit.cli``."""
    if argv[0] == "pawkit":
        return argv[1:]
    assert argv[:2] == ["accelerate", "launch"], f"README line neither pawkit nor accelerate launch: {argv}"
    i = argv.index("-m")
    assert argv[i + 1] == "pawkit.cli", argv
    return argv[i + 2 :]


def test_the_block_has_the_documented_commands():
    commands = [pawkit_argv(a)[0] for a in readme_lines()]
    for name in ("envs", "plugins", "config", "play", "train", "eval", "sweep"):
        assert name in commands, f"README's 'Using it' block lost `pawkit {name}`"


def test_every_readme_line_parses():
    """A renamed flag or subcommand fails here, in the default run, without training anything."""
    from accelerate.commands.launch import launch_command_parser

    cli.load_plugins()
    for argv in readme_lines():
        if argv[0] == "accelerate":
            launch = launch_command_parser().parse_args(argv[2:])
            assert launch.module and launch.training_script == "pawkit.cli", argv
        args = cli.parse(cli.build_parser(), pawkit_argv(argv))  # exits (SystemExit 2) on an unknown flag
        assert callable(args.func), argv


def small_sweep(cwd: Path) -> None:
    path = cwd / "configs" / "sweeps" / "gridnav.yaml"
    sweep = yaml.safe_load(path.read_text())
    first = next(iter(sweep["arms"]))
    sweep["arms"] = {first: sweep["arms"][first]}
    sweep["seeds"] = sweep["seeds"][:1]
    sweep["overrides"] = [o for o in sweep["overrides"] if not o.startswith(("trainer.steps=", "rollout."))]
    sweep["overrides"] += ["trainer.steps=1", *TRAIN_SPEED]
    sweep["wm_eval_episodes"] = 0
    sweep["parallel"] = 1
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))


def speed_up(argv: list[str]) -> list[str]:
    args = pawkit_argv(argv)
    if args[0] == "train":
        steps = next((a.split("=", 1)[1] for a in args if a.startswith("trainer.steps=")), None)
        assert steps in STEPS, f"README trains for trainer.steps={steps}: add its scaled-down length to STEPS"
        return [*args, *TRAIN_SPEED, f"trainer.steps={STEPS[steps]}"]
    if args[0] == "eval":
        return [*args, "--episodes", "2"]
    return args


@pytest.mark.filterwarnings("ignore:No artists with labels")  # the report plot of a 1-step sweep
def test_readme_commands_run_in_order(tmp_path, monkeypatch, capsys):
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    small_sweep(tmp_path)
    monkeypatch.chdir(tmp_path)
    ran = []
    for argv in readme_lines():
        if argv[0] == "accelerate":
            continue  # see the module docstring: needs GPUs, too slow on two CPU processes
        args = speed_up(argv)
        t0 = time.perf_counter()
        code = cli.main(args)
        out, err = capsys.readouterr()
        assert code == 0, f"`{shlex.join(argv)}` exited {code} (run as pawkit {shlex.join(args)}):\n{err[-3000:]}"
        ran.append((shlex.join(argv), time.perf_counter() - t0))
        if args[0] == "eval":  # the run folder was resolved to the newest checkpoint
            assert "is a run folder: evaluating" in err and "step-000001" in err, err
    # what the lines did to the run folder: resumed to step 2, overwritten, resumed again
    steps = sorted(p.name for p in (tmp_path / "runs" / "gridnav" / "checkpoints").glob("step-*"))
    assert steps[-1] == "step-000002", steps
    assert (tmp_path / "results" / "gridnav").is_dir()
    assert len(ran) == len(readme_lines()) - 1, ran
