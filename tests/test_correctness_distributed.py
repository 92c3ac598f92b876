"""Data-parallel training computes what one process computes on all the rows (issue #17, item 4).

Two real CPU processes under `accelerate launch` (gloo) each learn from a fixed rollout batch
with a different number of action tokens; one process then learns from the union of the rows.
The loss is a token mean over ALL action tokens (each process divides by the all-reduced
count and the gradients are summed), PaW's per-group weights count every process's groups,
and the logged metrics combine each process's (sum, weight) pairs — so gradients, parameters
and metrics agree to float rounding, also when one process has no samples at all.

Before the fix each process normalised by its own token count and the all-reduce averaged
the processes: on these rows the gradient was off by ~10-30 % (relative).
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from test_distributed import free_port

SCRIPT = Path(__file__).parent / "scripts" / "ddp_update.py"
# KL, entropy bonus, PaW (every eligible row, fixed λ, cross-entropy: a WM gradient everywhere),
# two PPO epochs (the second one clips) and small micro-batches (several per process).
OVERRIDES = [
    "rollout.tasks_per_step=2", "rollout.group_size=2", "algorithm.kl_coef=0.05", "algorithm.entropy_coef=0.01",
    "algorithm.ppo_epochs=2", "paw.enabled=true", "paw.selector=all", "paw.balancer=fixed", "paw.lambda0=0.5",
    "paw.wm_loss=ce", "trainer.micro_batch_tokens=256", "trainer.eval_every=0",
]
# Per-token means, batch totals and the one gradient norm: what one process logs on all rows.
# (paw/selected_fraction, eligible_fraction and lambda_* are the PaW plan's own per-process
# numbers, recorded unweighted by pawkit/train/paw.py; not compared here.)
COMPARED = [
    "loss/pg_loss", "loss/clip_fraction", "loss/entropy", "loss/kl", "loss/grad_norm", "loss/grad_norm_epoch1",
    "loss/grad_norm_epoch2", "loss/skipped_update", "paw/wm_loss_weighted", "paw/wm_loss_raw", "paw/wm_token_accuracy",
    "paw/wm_target_prob", "paw/wm_tokens", "rollout/advantage_mean", "rollout/action_tokens",
]


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    if shutil.which("accelerate") is None:
        pytest.skip("needs the accelerate launcher")
    out = tmp_path_factory.mktemp("ddp-update")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launch = ["accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--num_cpu_threads_per_process", "1",
              "--main_process_port", str(free_port()), "--mixed_precision", "no", "--dynamo_backend", "no"]
    done = subprocess.run([*launch, str(SCRIPT), str(out), *OVERRIDES], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return torch.load(out / "ddp.pt", weights_only=False)


@pytest.mark.parametrize("case", ["split", "empty"])
def test_two_processes_give_the_one_process_gradient_parameters_and_metrics(results, case):
    parallel, single = results["parallel"][case], results["single"][case]
    assert (parallel["world"], single["world"]) == (2, 1)
    if case == "split":  # the rows really are uneven: the two processes' token counts differ
        assert parallel["action_tokens"] != results["rank1_tokens"] and min(parallel["action_tokens"], results["rank1_tokens"]) > 0
    assert parallel["grad"].norm() > 0
    assert relative(parallel["grad"], single["grad"]) <= 1e-5
    assert torch.equal(parallel["start"], single["start"])
    # The parameter change of the two optimizer steps, not just the parameters (which barely move).
    assert relative(parallel["params"] - parallel["start"], single["params"] - single["start"]) <= 1e-5
    for key in COMPARED:
        assert parallel["metrics"][key] == pytest.approx(single["metrics"][key], rel=1e-5, abs=1e-7), (
            key, json.dumps({k: (parallel["metrics"][k], single["metrics"][k]) for k in COMPARED}, indent=1)
        )
