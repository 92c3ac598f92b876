"""Peak RSS and update time vs ``trainer.micro_batch_tokens``, side by side in one run:

    python benchmarks/memory.py [--models tiny,smollm2-135m] [--budgets 256,512,1024,2048]
                                [--sequences 16] [--prompt 96] [--response 32] [--threads 2]

Every row is measured in a fresh subprocess (peak RSS = that child's ``ru_maxrss`` from
``os.wait4``, so one row's allocations never leak into the next). The child builds a Trainer
(gridnav config, fp32, CPU unless a GPU is present), warms up with one 16-token update (so
AdamW's state exists in every row), then times ``--repeats`` updates (reporting the fastest after the first) on a fixed synthetic batch of
``sequences`` rows of ``prompt + response`` tokens: the old/reference log-prob pass plus the
PPO forward/backward/optimizer step, i.e. the part of a step micro-batching changes. Rollout is
left out on purpose (it does not depend on the budget). ``smollm2-135m`` rows also cover
activation checkpointing (``model.gradient_checkpointing``) and LoRA (r=8, all-linear).
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

ROWS = {
    # model -> list of (label, extra overrides, budgets or None = all)
    "tiny": [("full", [], None)],
    "smollm2-135m": [
        ("full", [], None),
        ("full + grad ckpt", ["model.gradient_checkpointing=true"], "ends"),
        ("LoRA r=8", ["model.lora.enabled=true", "model.lora.r=8"], "ends"),
    ],
}


def child(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    from pawkit.train.batching import TrainingSequence
    from pawkit.config import load_config
    from pawkit.train.trainer import Trainer

    cfg = load_config("gridnav", overrides=[
        f"model.name={args.model}", f"trainer.micro_batch_tokens={args.budget}", "trainer.output_dir=/tmp/pawkit-bench-memory",
        "rollout.tasks_per_step=1", "rollout.group_size=1", *args.overrides,
    ])
    trainer = Trainer(cfg)
    low, high = (0, 256) if len(trainer.tokenizer) < 1000 else (100, 32_000)  # ordinary tokens, no specials
    gen = torch.Generator().manual_seed(0)
    ids = lambda n: torch.randint(low, high, (n,), generator=gen).tolist()  # noqa: E731

    def update(seqs):
        advantages = torch.linspace(-1, 1, len(seqs))
        old, ref, _ = trainer.old_logprobs(seqs)
        return trainer.update(seqs, advantages, old, ref, torch.zeros(len(seqs))).result()

    update([TrainingSequence(ids(8), ids(8), [])])  # warm-up: kernels, AdamW state
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    seqs = [TrainingSequence(ids(args.prompt), ids(args.response), []) for _ in range(args.sequences)]
    times = []
    for _ in range(args.repeats):  # the first pass over new shapes pays one-off kernel set-up
        t0 = time.perf_counter()
        metrics = update(seqs)
        times.append(time.perf_counter() - t0)
    seconds = min(times[1:] or times)
    params = sum(p.numel() for p in trainer.model.parameters())
    trainer.close()
    print(json.dumps({"seconds": seconds, "rss_before_mb": base_rss, "params": params, "grad_norm": metrics["loss/grad_norm"]}))


def measure(model: str, budget: int, overrides: list[str], args: argparse.Namespace) -> dict:
    cmd = [
        sys.executable, __file__, "--child", "--model", model, "--budget", str(budget), "--threads", str(args.threads),
        "--repeats", str(args.repeats),
        "--sequences", str(args.sequences), "--prompt", str(args.prompt), "--response", str(args.response),
        *[f"--override={o}" for o in overrides],
    ]
    with tempfile.TemporaryFile("w+") as errors:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors, text=True)
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage (RUSAGE_CHILDREN would be a max over all)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            errors.seek(0)
            raise SystemExit(f"{model} budget {budget} {overrides} failed:\n{errors.read()[-3000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_rss_mb"] = usage.ru_maxrss / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="tiny,smollm2-135m")
    parser.add_argument("--budgets", default="256,512,1024,2048")
    parser.add_argument("--sequences", type=int, default=16)
    parser.add_argument("--prompt", type=int, default=96)
    parser.add_argument("--response", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2, help="updates per row; the fastest after the first is reported")
    parser.add_argument("--threads", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--budget", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--override", action="append", default=[], dest="overrides", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    budgets = [int(b) for b in args.budgets.split(",")]
    tokens = args.sequences * (args.prompt + args.response)
    print(f"batch: {args.sequences} sequences x ({args.prompt} prompt + {args.response} response) = {tokens} tokens; "
          f"fp32, {args.threads} torch threads; update = old log-probs + forward/backward/AdamW, "
          + (f"fastest of {args.repeats} after the first\n" if args.repeats > 1 else "one timed update (incl. first-call set-up)\n"))
    print("| model | variant | micro_batch_tokens | peak RSS (MB) | RSS before update (MB) | update time (s) |")
    print("|---|---|---:|---:|---:|---:|")
    for model in args.models.split(","):
        for label, overrides, which in ROWS[model]:
            chosen = budgets if which is None else sorted({budgets[0], budgets[-1]})
            for budget in chosen:
                r = measure(model, budget, overrides, args)
                print(f"| {model} ({r['params'] / 1e6:.1f} M) | {label} | {budget} | {r['peak_rss_mb']:.0f} | "
                      f"{r['rss_before_mb']:.0f} | {r['seconds']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
