"""PaW's cost, measured side by side in one run:

1. update step (forward + backward) with PaW on vs off on the SAME batch and model, next to
   the token ratio (total tokens on / off): the only extra work should be the extra tokens;
2. whole RL step (rollout + update) with PaW on vs off, same seed and config.

    python benchmarks/paw_overhead.py [--env gridnav] [--hidden 0] [--steps 3] [k=v ...]

``--hidden N`` swaps the tiny model for a random Qwen2 of that width (e.g. 512 → ~30 M params).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from pawkit.config import load_config
from pawkit.paw import drop_unweighted_targets
from pawkit.trainer import Trainer


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
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    base = ["trainer.output_dir=/tmp/pawkit-bench", "trainer.eval_every=0", *args.overrides]
    on = Trainer(load_config(args.env, overrides=[*base, "paw.enabled=true"]))
    if args.hidden:
        bigger_model(on, args.hidden)
    params = sum(p.numel() for p in on.model.parameters())

    # 1. Update step on one batch: identical action tokens, PaW adds the next-observation tokens.
    batch = on.rollout()
    seqs_on = on.sequences(batch)
    seqs_off = [type(s)(s.prompt_ids, s.response_ids, [], s.allowed) for s in seqs_on]
    advantages = on.advantages(batch)
    old, ref, entropy = on.old_logprobs(seqs_off)
    plan, _ = on.paw_weights(batch, seqs_on, entropy)
    seqs_on = drop_unweighted_targets(seqs_on, plan.weights)  # as the trainer does
    tokens_on = sum(len(s) for s in seqs_on)
    tokens_off = sum(len(s) for s in seqs_off)
    t_on = timed(lambda: on.update(seqs_on, advantages, old, ref, plan.weights), args.repeats)
    on.cfg.paw.enabled = False
    t_off = timed(lambda: on.update(seqs_off, advantages, old, ref, torch.zeros(len(seqs_off))), args.repeats)
    on.cfg.paw.enabled = True
    on.close()
    print(f"env={args.env} params={params / 1e6:.2f}M transitions={len(seqs_on)} selected={int(plan.selected.sum())}")
    print(f"tokens on/off: {tokens_on}/{tokens_off} = {tokens_on / tokens_off:.3f}")
    print(f"update time on/off: {t_on:.3f}/{t_off:.3f} s = {t_on / t_off:.3f}")
    print(f"time ratio / token ratio: {(t_on / t_off) / (tokens_on / tokens_off):.3f} (goal <= 1.1)")

    # 2. Whole RL steps, same seed: rollout dominates in realistic configs.
    whole = {}
    for enabled in (False, True):
        trainer = Trainer(load_config(args.env, overrides=[*base, f"paw.enabled={str(enabled).lower()}"]))
        if args.hidden:
            bigger_model(trainer, args.hidden)
        whole[enabled] = statistics.median(trainer.train_step()["step_seconds"] for _ in range(args.steps))
        trainer.close()
    print(f"whole step on/off: {whole[True]:.3f}/{whole[False]:.3f} s = {whole[True] / whole[False]:.3f} (goal <= 1.05)")


if __name__ == "__main__":
    main()
