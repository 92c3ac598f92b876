"""Live output: with stderr not a terminal, ``pawkit train`` writes one plain line per step and
per evaluation; the end of the run names the curve PNG and the ``pawkit view`` command."""

from __future__ import annotations

import re
import subprocess
import sys


def test_non_tty_stderr_gets_one_line_per_step_and_eval(tmp_path):
    out = tmp_path / "run"
    log = tmp_path / "log"
    with open(log, "w") as err:
        done = subprocess.run(
            [sys.executable, "-m", "pawkit.cli", "train", "--env", "gridnav", f"trainer.output_dir={out}", "trainer.steps=2",
             "paw.enabled=true", "rollout.tasks_per_step=1", "rollout.group_size=2", "trainer.eval_every=2",
             "trainer.eval_episodes=2", "trainer.eval_before_after=false", "trainer.early_stop_success=null",
             "trainer.dump_trajectories_every=0"],
            stdout=subprocess.PIPE, stderr=err, text=True, timeout=300)
    assert done.returncode == 0
    lines = log.read_text().splitlines()
    steps = [line for line in lines if line.startswith("step ")]
    assert len(steps) == 2
    for k, line in enumerate(steps, 1):
        assert re.fullmatch(rf"step {k}/2  success \d\.\d\d  return -?\d+\.\d\d  invalid \d\.\d\d  wm_acc \d\.\d{{3}}  "
                            r"λ \d+\.\d\d  cmae_active \d\.\d\d  \d+\.\ds", line), line
    evals = [line for line in lines if line.startswith("eval after step")]
    assert len(evals) == 1 and re.fullmatch(r"eval after step 2: success \d\.\d{3} return -?\d+\.\d{3} invalid \d\.\d{3} \(\d+\.\ds\)", evals[0])
    assert "\x1b[" not in log.read_text()  # no terminal control codes in a log file
    assert done.stdout.splitlines()[-2:] == [f"learning curves: {out / 'curves.png'}", f"open the run: pawkit view {out}"]
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
