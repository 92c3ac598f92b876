"""Data-parallel training across processes started by ``accelerate launch``.

Every process loads the same model, runs its own envs and rollout groups (a different task
stream per rank), computes its own loss, and then the gradients are averaged with one
all-reduce before the optimizer step, so all processes keep identical parameters. We average
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

# Metrics that are totals over the batch (summed across processes); all others are averaged.
SUMMED_METRICS = frozenset({
    "rollout/env_errors", "rollout/truncated_prompts", "perf/generated_tokens", "rollout/action_tokens", "paw/wm_tokens",
    "rollout/episodes",
})


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

    def average_gradients(self, params: list[torch.nn.Parameter]) -> None:
        """One flat all-reduce of every trainable gradient (missing gradients count as zero)."""
        if not self.enabled or not params:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= self.world
        offset = 0
        for p in params:
            n = p.numel()
            p.grad = flat[offset : offset + n].view_as(p).clone()
            offset += n

    def combine_metrics(self, metrics: dict[str, float]) -> dict[str, float]:
        """Batch totals are summed, rates and losses averaged over the processes that report them."""
        if not self.enabled:
            return metrics
        everyone = self.gather(metrics)
        combined: dict[str, float] = {}
        for key in dict.fromkeys(k for m in everyone for k in m):
            values = [m[key] for m in everyone if key in m]
            combined[key] = float(sum(values)) if key in SUMMED_METRICS else float(sum(values) / len(values))
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
