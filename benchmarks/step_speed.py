"""Whole RL step (rollout + old-log-prob pass + update) of the old path vs the fast path, PaW
off and on, measured side by side in one process.

- old path: ``algorithm.old_logprobs=recompute`` (a no-grad pass re-scores every action token)
  and LoRA on every block (``model.lora.layers=all``): what pawkit did before the fast loop;
- fast path: the sampler's recorded log-probs and entropies reused (``old_logprobs=auto``) and
  LoRA on the top blocks only (``model.lora.layers=last:K``, backward stops below them).

Each arm is its own Trainer (same seed, so the same tasks; LoRA starts at B = 0, so the same
policy and the same sampled episodes). Per arm: one timed rollout, then ``--repeats`` timed
``learn`` calls on that batch (pass + update; median). The printed ratios are old / fast.

    python benchmarks/step_speed.py [--env webshop] [--layers last:8] [--repeats 2] [k=v ...]
"""

from __future__ import annotations

import argparse

import torch

from pawkit.config import load_config
from pawkit.train.trainer import Trainer
from timing import rollout_then_learn  # benchmarks/timing.py (the script's folder is on sys.path)

ARMS = {
    "old": ["algorithm.old_logprobs=recompute", "model.lora.layers=all"],
    "fast": ["algorithm.old_logprobs=auto"],  # + model.lora.layers=--layers
}


def measure(env: str, overrides: list[str], repeats: int) -> dict[str, float]:
    trainer = Trainer(load_config(env, overrides=overrides))
    torch.manual_seed(0)  # LoRA's init drew a different number of values per arm: same sampling stream for all
    try:
        batch, rollout, learn, result = rollout_then_learn(trainer, repeats)
        trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    finally:
        trainer.close()
    return {
        "rollout_s": rollout, "learn_s": learn, "pass_s": result.get("perf/logprob_pass_seconds", 0.0),
        "tokens": result.get("rollout/action_tokens", 0.0) + result.get("paw/wm_tokens", 0.0), "trainable": trainable,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="webshop")
    parser.add_argument("--layers", default="last:8", help="the fast arm's model.lora.layers")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    base = ["model.lora.enabled=true", "trainer.output_dir=/tmp/pawkit-step-speed", "trainer.eval_before_after=false",
            "trainer.dump_trajectories_every=0", *args.overrides]
    rows = []
    for paw in ("false", "true"):
        for arm, extra in ARMS.items():
            layers = [f"model.lora.layers={args.layers}"] if arm == "fast" else []
            m = measure(args.env, [*base, f"paw.enabled={paw}", *extra, *layers], args.repeats)
            rows.append((paw, arm, m))
            print(f"paw={paw:5} {arm:4}: rollout {m['rollout_s']:7.2f} s  pass {m['pass_s']:6.2f} s  "
                  f"learn {m['learn_s']:7.2f} s  step {m['rollout_s'] + m['learn_s']:7.2f} s  "
                  f"trained tokens {m['tokens']:6.0f}  trainable params {m['trainable']:,}", flush=True)
    print()
    print(f"| {args.env}, LoRA {args.layers} | update (pass + backward) old / fast | whole step old / fast |")
    print("|---|---|---|")
    by = {(p, a): m for p, a, m in rows}
    for paw in ("false", "true"):
        old, fast = by[(paw, "old")], by[(paw, "fast")]
        step_old, step_fast = old["rollout_s"] + old["learn_s"], fast["rollout_s"] + fast["learn_s"]
        print(f"| PaW {'on' if paw == 'true' else 'off'} | {old['learn_s'] / fast['learn_s']:.2f}× | {step_old / step_fast:.2f}× |")
    off, on = by[("false", "fast")], by[("true", "fast")]
    print(f"\nfast path, PaW on / off: update {on['learn_s'] / off['learn_s']:.2f}× for {on['tokens'] / max(off['tokens'], 1):.2f}× "
          f"the tokens (time per token {on['learn_s'] / off['learn_s'] / (on['tokens'] / max(off['tokens'], 1)):.2f}); "
          f"whole step {(on['rollout_s'] + on['learn_s']) / (off['rollout_s'] + off['learn_s']):.2f}×")


if __name__ == "__main__":
    main()
