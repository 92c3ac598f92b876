"""Two CPU processes under `accelerate launch` (gloo): sharded rollouts, averaged gradients."""

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from pawkit.config import load_config
from pawkit.train.trainer import Trainer

SCRIPT = Path(__file__).parent / "scripts" / "ddp_train.py"
OVERRIDES = ["trainer.steps=2", "rollout.tasks_per_step=2", "rollout.group_size=4", "trainer.eval_every=0", "trainer.eval_before_after=false"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(shutil.which("accelerate") is None, reason="needs the accelerate launcher")
def test_two_processes_train_and_end_with_identical_parameters(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # accelerate's --cpu launcher starts ONE process unless MPI is set up; --multi_gpu starts
    # torchrun workers, which pawkit connects over gloo when there is no GPU.
    launch = ["accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--num_cpu_threads_per_process", "1", "--main_process_port", str(free_port()), "--mixed_precision", "no", "--dynamo_backend", "no"]
    done = subprocess.run([*launch, str(SCRIPT), str(tmp_path), *OVERRIDES], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["digest"] == ranks[1]["digest"]
    # Both processes log the same combined metrics: 2 processes x 2 tasks x 4 episodes.
    assert ranks[0]["history"] == ranks[1]["history"]
    assert all(m["rollout/episodes"] == 16 for m in ranks[0]["history"])
    assert any(m["loss/grad_norm"] > 0 for m in ranks[0]["history"])  # a real update happened
    # Only rank 0 writes: one metrics line per step, one checkpoint with both RNG states.
    run = tmp_path / "run"
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2
    # A single process cannot resume a 2-process checkpoint: one clear line instead of drifted streams.
    cfg = load_config("gridnav", overrides=[f"trainer.output_dir={run}", *OVERRIDES])
    with pytest.raises(Exception, match="written by 2 process"):
        Trainer(cfg, resume=True)


@pytest.mark.parametrize("flag", ["ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED"])
def test_sharded_launch_configs_are_refused_in_one_line(monkeypatch, flag):
    from pawkit.train.distributed import Distributed
    from pawkit.protocol import UsageError

    monkeypatch.setenv(flag, "true")
    with pytest.raises(UsageError, match="data-parallel only") as info:
        Distributed()
    assert "\n" not in str(info.value)
