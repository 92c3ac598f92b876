"""Where PaW's extra update time goes: ``torch.profiler`` over one ``learn`` with PaW off and on,
on the same rollout batch, with the ops grouped by what they compute.

Groups (by op name): attention (``scaled_dot_product_attention`` and its kernels: cost ∝ Σ
length²), LM head (the ``[N, hidden] × [hidden, V]`` matmul and its backward at the read
positions: ∝ positions), log-softmax / log-sum-exp and entropy over the vocabulary (∝ positions
× V), the other matmuls (the blocks' linear layers: ∝ tokens), and the rest. Printed per group:
self CPU seconds off and on, and the ratio next to the ratio of the quantity it scales with.

    python benchmarks/paw_profile.py [--env webshop] [k=v ...]
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile

from pawkit.config import load_config
from pawkit.train.batching import micro_batches
from pawkit.train.metrics import Metrics
from pawkit.train.trainer import Trainer

GROUPS = (  # first match wins
    ("attention", ("attention", "sdpa", "_efficient_attention", "flash")),
    ("log-softmax / lse / entropy", ("log_softmax", "logsumexp", "softmax", "_log_softmax", "xlogy", "exp")),
    ("matmul (blocks + LM head)", ("mm", "addmm", "matmul", "linear", "bmm")),
    ("elementwise / norms", ("mul", "add", "rsqrt", "pow", "mean", "silu", "neg", "cat", "sub", "div", "where", "copy_", "fill_")),
)


def group_of(name: str) -> str:
    low = name.lower()
    for group, keys in GROUPS:
        if any(k in low for k in keys):
            return group
    return "other"


def profiled_learn(trainer: Trainer, batch) -> tuple[dict[str, float], float]:
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        trainer.learn(batch, Metrics())
    out: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        out[group_of(event.key)] += event.self_cpu_time_total / 1e6
    return dict(out), sum(out.values())


def shape_of(trainer: Trainer, batch, with_wm: bool) -> dict[str, float]:
    seqs = trainer.sequences(batch)
    c = trainer.cfg
    mbs = micro_batches(seqs, c.trainer.micro_batch_tokens, trainer.tokenizer.pad_token_id, len(trainer.tokenizer), with_wm=with_wm)
    return {
        "tokens": float(sum(int(mb.attention_mask.sum()) for mb in mbs)),
        "padded": float(sum(mb.input_ids.numel() for mb in mbs)),
        "pairs": float(sum(int(l) ** 2 for mb in mbs for l in mb.attention_mask.sum(-1))),
        "positions": float(sum(int((mb.action_mask | mb.wm_mask).sum()) for mb in mbs)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="webshop")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    base = ["trainer.output_dir=/tmp/pawkit-paw-profile", "trainer.eval_before_after=false", "trainer.dump_trajectories_every=0",
            "rollout.tasks_per_step=2", "rollout.group_size=2", "rollout.max_steps=3", "rollout.num_workers=0", *args.overrides]
    results = {}
    for paw in ("false", "true"):
        trainer = Trainer(load_config(args.env, overrides=[*base, f"paw.enabled={paw}"]))
        torch.manual_seed(0)
        try:
            batch = trainer.rollout()
            trainer.learn(batch, Metrics())  # warm-up (allocator, kernels); the profiled call is the second
            groups, total = profiled_learn(trainer, batch)
            results[paw] = (groups, total, shape_of(trainer, batch, paw == "true"))
        finally:
            trainer.close()
    (g_off, t_off, s_off), (g_on, t_on, s_on) = results["false"], results["true"]
    ratio = lambda key: s_on[key] / max(s_off[key], 1)  # noqa: E731
    print(f"env={args.env}: forward tokens on/off {ratio('tokens'):.3f}, padded {ratio('padded'):.3f}, "
          f"attention pairs (Σ length²) {ratio('pairs'):.3f}, LM-head positions {ratio('positions'):.3f}")
    print(f"profiled self CPU time of one learn: off {t_off:.2f} s, on {t_on:.2f} s, on/off {t_on / t_off:.3f}")
    print("| op group | off (s) | on (s) | on / off | share of the extra time |")
    print("|---|---|---|---|---|")
    extra = max(t_on - t_off, 1e-9)
    for group in sorted(set(g_off) | set(g_on), key=lambda g: -(g_on.get(g, 0) - g_off.get(g, 0))):
        a, b = g_off.get(group, 0.0), g_on.get(group, 0.0)
        print(f"| {group} | {a:.2f} | {b:.2f} | {b / a if a else float('inf'):.2f}× | {(b - a) / extra:.0%} |")


if __name__ == "__main__":
    main()
