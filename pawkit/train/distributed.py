"""Data-parallel training across processes started by ``accelerate launch``.

Every process loads the same model, runs its own envs and rollout groups (a different task
stream per rank), computes its share of the loss, and then the gradients are summed with one
all-reduce before the optimizer step, so all processes keep identical parameters. The loss is
a token mean over ALL processes' action tokens: each process divides its token sums by the
global count (``total``, one all-reduce of the count), so the summed gradient is exactly the
gradient one process would compute on every row (tests/test_correctness_distributed.py) — a
process with 126 action tokens weighs 126/456 of the step, not half of it. We reduce
gradients by hand instead of wrapping the model in DDP because each process may run a
different number of micro-batches per step (episodes differ in length); DDP would deadlock on
that. One process (rank 0) writes checkpoints, logs and evaluations.

With one process (plain ``pawkit train``) every method is a cheap no-op.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist

from pawkit.protocol import UsageError
from pawkit.train.metrics import Metrics

# Metrics that are totals over the batch (summed across processes): counts, and the weighted WM
# loss (each process's term of the one loss). Peaks are the largest process's. All others are
# means weighted as each process's accumulator weighted them (tokens, episodes, …).
SUMMED_METRICS = frozenset({
    "rollout/env_errors", "rollout/engine_lost_episodes", "rollout/truncated_prompts", "rollout/unsolvable_episodes", "perf/generated_tokens", "rollout/action_tokens", "paw/wm_tokens",
    "rollout/episodes", "paw/wm_loss_weighted", "rollout/extra_episodes",
})
MAX_METRICS = frozenset({"perf/peak_rss_mb", "perf/peak_gpu_mb", "rollout/resample_rounds"})


class Distributed:
    def __init__(self) -> None:
        for flag, name in (("ACCELERATE_USE_FSDP", "FSDP"), ("ACCELERATE_USE_DEEPSPEED", "DeepSpeed")):
            if os.environ.get(flag, "").lower() == "true":
                raise UsageError(
                    f"pawkit trains data-parallel only (a full model copy per process, which generation needs); "
                    f"{name} sharding is not supported yet: launch with a multi-GPU (DDP) accelerate config"
                )
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = 0
        self.local_rank = 0
        if self.world > 1:
            from accelerate import (
                PartialState,  # sets up the process group (gloo on CPU, nccl on GPU)
            )

            state = PartialState(cpu=not torch.cuda.is_available())
            self.rank, self.local_rank, self.world = state.process_index, state.local_process_index, state.num_processes

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def broadcast_parameters(self, model: torch.nn.Module) -> None:
        """Start every process from rank 0's weights (a LoRA init draws random numbers)."""
        if not self.enabled:
            return
        with torch.no_grad():
            for tensor in list(model.parameters()) + list(model.buffers()):
                dist.broadcast(tensor.data, src=0)

    def total(self, value: float) -> float:
        """``value`` summed over processes (one all-reduce; exact for counts below 2**53)."""
        if not self.enabled:
            return value
        box = torch.tensor([float(value)], dtype=torch.float64, device=self._collective_device())
        dist.all_reduce(box, op=dist.ReduceOp.SUM)
        return float(box.item())

    def _collective_device(self) -> torch.device:
        return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")

    def sum_gradients(self, params: list[torch.nn.Parameter]) -> None:
        """One flat all-reduce (sum) of every trainable gradient (missing gradients count as zero).

        A sum, not a mean: each process's loss is already its share of the global token mean
        (its token sums over the global token count, see ``total``).
        """
        if not self.enabled or not params:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        offset = 0
        for p in params:
            n = p.numel()
            p.grad = flat[offset : offset + n].view_as(p).clone()
            offset += n

    def combine_metrics(self, metrics: Metrics) -> dict[str, float]:
        """The step's metrics over all processes, from each one's (sum, weight) pairs.

        A mean is Σ sums / Σ weights, so a token mean (``loss/pg_loss``, ``loss/kl``, …) is the
        mean over every process's tokens and an episode rate the rate over every process's
        episodes — what one process would log on all rows. Batch totals (``SUMMED_METRICS``)
        are summed, peaks (``MAX_METRICS``) the largest; a key only some processes report is
        combined over those.
        """
        if not self.enabled:
            return metrics.result()
        everyone = self.gather((metrics.result(), metrics.totals()))
        combined: dict[str, float] = {}
        for key in dict.fromkeys(k for _, totals in everyone for k in totals):
            values = [result[key] for result, totals in everyone if key in totals]
            if key in SUMMED_METRICS:
                combined[key] = float(sum(values))
            elif key in MAX_METRICS:
                combined[key] = float(max(values))
            else:
                sums, weights = zip(*(totals[key] for _, totals in everyone if key in totals))
                combined[key] = float(sum(sums) / sum(weights)) if sum(weights) else 0.0
        return combined

    def gather(self, obj: Any) -> list[Any]:
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's value on every process (decisions such as 'stop now' must agree)."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def any(self, flag: bool) -> bool:
        if not self.enabled:
            return flag
        return any(self.gather(bool(flag)))

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def device_for(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` = this process's GPU when there is one, else the CPU."""
    if name == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    return torch.device(name)
