"""Run under `accelerate launch` with 2 processes: data-parallel learning vs one process.

Each process plays one rollout batch (its own tasks: rows with different token counts), and
the batches are exchanged, so both sides learn from fixed rows. Then, from the same initial
parameters each time:

- ``split``: each process learns from its own batch (``Trainer.learn``, data-parallel);
- ``empty``: rank 0 learns from its batch, rank 1 from an empty one (it only joins the
  all-reduces);
- rank 0 then learns from the union of the batches (``split``) and from its own (``empty``) as
  ONE process (``WORLD_SIZE=1``).

Rank 0 writes the gradients, parameters and combined metrics of both to ``<out>/ddp.pt``;
tests/test_correctness_distributed.py compares them.
"""

import os
import sys
from pathlib import Path

import torch

from pawkit.config import load_config
from pawkit.rollout.samples import RolloutBatch
from pawkit.train.metrics import Metrics
from pawkit.train.trainer import Trainer

out = Path(sys.argv[1])
cfg = load_config("gridnav", overrides=[f"trainer.output_dir={out / 'run'}", *sys.argv[2:]])


def learn(batch: RolloutBatch) -> dict:
    trainer = Trainer(cfg)  # fresh: the same initial parameters and optimizer every time
    try:
        params = [p for p in trainer.model.parameters() if p.requires_grad]
        start = torch.cat([p.detach().reshape(-1) for p in params]).clone()
        metrics = Metrics()
        trainer.learn(batch, metrics)
        return {
            "start": start,
            "grad": torch.cat([p.grad.reshape(-1) for p in params]).clone(),
            "params": torch.cat([p.detach().reshape(-1) for p in params]).clone(),
            "metrics": trainer.dist.combine_metrics(metrics),
            "action_tokens": sum(len(s.response_ids) for s in batch.samples),
            "world": trainer.dist.world,
        }
    finally:
        trainer.close()


first = Trainer(cfg)
rank = first.dist.rank
batches = first.dist.gather(first.rollout())
first.close()
empty = RolloutBatch(episodes=[], samples=[])
parallel = {"split": learn(batches[rank]), "empty": learn(batches[0] if rank == 0 else empty)}
if rank == 0:
    os.environ["WORLD_SIZE"] = "1"  # pawkit.train.distributed reads it: the next trainers are one process
    union = RolloutBatch(episodes=batches[0].episodes + batches[1].episodes, samples=batches[0].samples + batches[1].samples)
    single = {"split": learn(union), "empty": learn(batches[0])}
    torch.save({"parallel": parallel, "single": single, "rank1_tokens": sum(len(s.response_ids) for s in batches[1].samples)}, out / "ddp.pt")
