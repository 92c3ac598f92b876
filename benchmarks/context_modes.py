"""Step mode vs trajectory mode (``rollout.context``), PaW off and on, measured side by side in one process.

- step: one prompt per turn with the last ``history_length`` (observation, action) pairs
  (verl-agent); each step is its own training sequence, PaW appends ``delimiter + o_{t+1}``;
- trajectory: one sequence per episode, grown turn by turn; the update runs one row per
  episode and PaW's targets are the observation segments already in it.

Per arm (its own Trainer, same seed and tasks): one timed rollout, then ``--repeats`` timed
``learn`` calls on that batch (median). Printed per arm: rollout and update seconds, tokens
the update's forward pass reads per episode (sum of its rows' lengths / episodes), and tokens
trained on (action + WM target). Then ratios step / trajectory, and PaW on / off per mode.

    python benchmarks/context_modes.py [--envs webshop,alfworld] [--history 2] [--repeats 1] [k=v ...]
"""

from __future__ import annotations

import argparse

import torch

from pawkit.config import load_config
from pawkit.train.batching import micro_batches
from pawkit.train.trainer import Trainer
from timing import rollout_then_learn  # benchmarks/timing.py (the script's folder is on sys.path)


def measure(env: str, overrides: list[str], repeats: int) -> dict[str, float]:
    trainer = Trainer(load_config(env, overrides=overrides))
    torch.manual_seed(0)
    try:
        batch, rollout, learn, result = rollout_then_learn(trainer, repeats)
        seqs = trainer.sequences(batch)
        c = trainer.cfg
        read = sum(int(mb.attention_mask.sum()) for mb in micro_batches(
            seqs, c.trainer.micro_batch_tokens, trainer.tokenizer.pad_token_id, len(trainer.tokenizer), with_wm=c.paw.enabled))
    finally:
        trainer.close()
    episodes = max(len(batch.episodes), 1)
    return {
        "rollout_s": rollout, "learn_s": learn, "episodes": len(batch.episodes),
        "steps": len(batch.samples) / episodes, "forward_tokens": read / episodes,
        "trained_tokens": (result.get("rollout/action_tokens", 0.0) + result.get("paw/wm_tokens", 0.0)) / episodes,
        "context_ended": result.get("rollout/context_ended", 0.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", default="webshop,alfworld")
    parser.add_argument("--history", type=int, default=2, help="step mode's rollout.history_length")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    base = ["model.lora.enabled=true", "model.lora.layers=last:8", "trainer.output_dir=/tmp/pawkit-context-modes",
            "trainer.eval_before_after=false", "trainer.dump_trajectories_every=0", "rollout.num_workers=0",
            "rollout.tasks_per_step=2", "rollout.group_size=2", "rollout.max_steps=5", *args.overrides]
    modes = {"step": ["rollout.context=step", f"rollout.history_length={args.history}"], "trajectory": ["rollout.context=trajectory"]}
    for env in args.envs.split(","):
        by = {}
        for paw in ("false", "true"):
            for mode, extra in modes.items():
                m = measure(env, [*base, f"paw.enabled={paw}", *extra], args.repeats)
                by[(mode, paw)] = m
                print(f"{env} {mode:10} paw={paw:5}: rollout {m['rollout_s']:7.2f} s  update {m['learn_s']:7.2f} s  "
                      f"step {m['rollout_s'] + m['learn_s']:7.2f} s  per episode: {m['steps']:.1f} steps, forward "
                      f"{m['forward_tokens']:7.0f} tokens, trained {m['trained_tokens']:6.0f} tokens  "
                      f"context_ended {m['context_ended']:.0f}", flush=True)
        print(f"\n| {env} (step mode history_length {args.history}) | forward tokens / episode | update time | whole step |")
        print("|---|---|---|---|")
        for paw in ("false", "true"):
            s, t = by[("step", paw)], by[("trajectory", paw)]
            print(f"| PaW {'on' if paw == 'true' else 'off'}: step / trajectory | {s['forward_tokens'] / max(t['forward_tokens'], 1):.2f}× "
                  f"| {s['learn_s'] / t['learn_s']:.2f}× | {(s['rollout_s'] + s['learn_s']) / (t['rollout_s'] + t['learn_s']):.2f}× |")
        for mode in modes:
            on, off = by[(mode, "true")], by[(mode, "false")]
            print(f"| {mode} mode: PaW on / off | {on['forward_tokens'] / max(off['forward_tokens'], 1):.2f}× "
                  f"| {on['learn_s'] / off['learn_s']:.2f}× | {(on['rollout_s'] + on['learn_s']) / (off['rollout_s'] + off['learn_s']):.2f}× |")
        print()


if __name__ == "__main__":
    main()
