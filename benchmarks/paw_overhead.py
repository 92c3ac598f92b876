"""PaW's cost, measured side by side in one run:

1. update step (forward + backward) with PaW on vs off on the SAME batch and model, next to
   the token ratio (total tokens on / off): the only extra work should be the extra tokens;
2. whole RL step with PaW on vs off on that same rollout: rollout + old log-probs (+ PaW's
   selection) + update, each part timed. PaW does not touch generation, so both arms share the
   one measured rollout; timing two independent trainers instead adds their rollouts' noise
   (different sampled episodes) to a difference of a few percent (``--steps N`` still does that).

    python benchmarks/paw_overhead.py [--env gridnav] [--hidden 0] [--repeats 3] [--steps 0] [k=v ...]

``--hidden N`` swaps the tiny model for a random Qwen2 of that width (e.g. 512 → ~30 M params).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from pawkit.config import load_config
from pawkit.train.paw import drop_unweighted_targets
from pawkit.train.trainer import Trainer


def bigger_model(trainer: Trainer, hidden: int) -> None:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    base = trainer.model.config
    config = Qwen2Config(
        vocab_size=base.vocab_size, hidden_size=hidden, num_hidden_layers=8, num_attention_heads=8,
        num_key_value_heads=4, intermediate_size=hidden * 4, max_position_embeddings=8192, tie_word_embeddings=True,
    )
    trainer.model = Qwen2ForCausalLM(config)
    trainer.generator.model = trainer.model
    trainer.optimizer = torch.optim.AdamW(trainer.model.parameters(), lr=trainer.cfg.trainer.lr)
    trainer.scheduler = torch.optim.lr_scheduler.LambdaLR(trainer.optimizer, lambda _: 1.0)


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--env", default="gridnav")
    parser.add_argument("--hidden", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=0, help="also time N independent train steps per arm")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    base = ["trainer.output_dir=/tmp/pawkit-bench", "trainer.eval_every=0", *args.overrides]
    on = Trainer(load_config(args.env, overrides=[*base, "paw.enabled=true"]))
    if args.hidden:
        bigger_model(on, args.hidden)
    params = sum(p.numel() for p in on.model.parameters())

    # 1. Update step on one batch: identical action tokens, PaW adds the next-observation tokens.
    t0 = time.perf_counter()
    batch = on.rollout()
    t_rollout = time.perf_counter() - t0
    seqs_on = on.sequences(batch)
    seqs_off = [type(s)(s.prompt_ids, s.response_ids, [], s.allowed) for s in seqs_on]
    advantages = on.advantages(batch)
    t0 = time.perf_counter()
    old, ref, entropy = on.old_logprobs(seqs_off)
    t_old = time.perf_counter() - t0
    t_select = timed(lambda: on.paw_weights(batch, seqs_on, entropy), args.repeats)
    plan, _ = on.paw_weights(batch, seqs_on, entropy)
    seqs_on = drop_unweighted_targets(seqs_on, plan.weights)  # as the trainer does
    tokens_on = sum(len(s) for s in seqs_on)
    tokens_off = sum(len(s) for s in seqs_off)
    on.update(seqs_on[:2], advantages[:2], old[:2], ref[:2], plan.weights[:2])  # warm-up: neither arm pays first-call costs
    t_on = timed(lambda: on.update(seqs_on, advantages, old, ref, plan.weights), args.repeats)
    on.cfg.paw.enabled = False
    t_off = timed(lambda: on.update(seqs_off, advantages, old, ref, torch.zeros(len(seqs_off))), args.repeats)
    on.cfg.paw.enabled = True
    on.close()
    print(f"env={args.env} params={params / 1e6:.2f}M transitions={len(seqs_on)} selected={int(plan.selected.sum())}")
    print(f"tokens on/off: {tokens_on}/{tokens_off} = {tokens_on / tokens_off:.3f}")
    print(f"update time on/off: {t_on:.3f}/{t_off:.3f} s = {t_on / t_off:.3f}")
    print(f"time ratio / token ratio: {(t_on / t_off) / (tokens_on / tokens_off):.3f} (goal <= 1.1)")
    # Attention work grows with length²: it dominates in narrow models (the tiny one, hidden 64).
    pairs_on, pairs_off = sum(len(s) ** 2 for s in seqs_on), sum(len(s) ** 2 for s in seqs_off)
    print(f"attention pairs (sum of length²) on/off: {pairs_on / pairs_off:.3f}")
    # Only action and WM-target positions reach the LM head (pawkit.train.batching.forward).
    head_on = sum(len(s.response_ids) + len(s.wm_ids) for s in seqs_on)
    head_off = sum(len(s.response_ids) for s in seqs_off)
    print(f"LM-head positions on/off: {head_on}/{head_off} = {head_on / head_off:.3f}")

    # 2. Whole RL step on that batch: the same rollout and old-log-prob pass for both arms.
    whole_off = t_rollout + t_old + t_off
    whole_on = t_rollout + t_old + t_select + t_on
    print(f"step parts: rollout {t_rollout:.3f} s, old log-probs {t_old:.3f} s, PaW selection {t_select:.4f} s")
    print(f"rollout share of the plain step: {t_rollout / whole_off:.3f}")
    print(f"whole step on/off (same rollout): {whole_on:.3f}/{whole_off:.3f} s = {whole_on / whole_off:.3f} (goal <= 1.05)")

    if args.steps:  # independent trainers: includes the noise of two different rollouts
        whole = {}
        for enabled in (False, True):
            trainer = Trainer(load_config(args.env, overrides=[*base, f"paw.enabled={str(enabled).lower()}"]))
            if args.hidden:
                bigger_model(trainer, args.hidden)
            whole[enabled] = statistics.median(trainer.train_step()["perf/step_seconds"] for _ in range(args.steps))
            trainer.close()
        print(f"independent steps on/off (median of {args.steps}): {whole[True]:.3f}/{whole[False]:.3f} s = {whole[True] / whole[False]:.3f}")


if __name__ == "__main__":
    main()
