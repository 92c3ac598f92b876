"""Rollout loop vs raw ``model.generate`` on the same prompts and batch, and the env-time share.

    python benchmarks/rollout_throughput.py [--env gridnav] [--model tiny] [k=v ...]

Prints ratios measured side by side in one run (never used as a timed assertion).
"""

from __future__ import annotations

import argparse
import time

import torch

from pawkit import plugins
from pawkit.config import load_config
from pawkit.rollout.envpool import make_env_pool
from pawkit.train.models import load_model
from pawkit.rollout.generate import Generator
from pawkit.rollout.run import draw_tasks, run_rollout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--env", default="gridnav")
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    cfg = load_config(args.env, overrides=[f"model.name={args.model}", *args.overrides])
    model, tokenizer = load_model(cfg.model)
    env = plugins.get("env", cfg.env.name)(**cfg.env.options)
    generator = Generator(model, tokenizer, cfg.rollout)
    slots = cfg.rollout.tasks_per_step * cfg.rollout.group_size
    import random

    rng = random.Random(cfg.seed)
    loop_tokens = loop_seconds = env_seconds = raw_tokens = raw_seconds = 0.0
    with make_env_pool(cfg.env.name, cfg.env.options, slots, cfg.rollout.num_workers) as pool:
        for _ in range(args.repeats):
            tasks = draw_tasks(env, cfg.env.train_split, cfg.rollout.tasks_per_step, rng)
            t0 = time.perf_counter()
            batch = run_rollout(env, pool, generator, tasks, cfg.rollout.group_size, cfg.rollout, cfg.rollout.temperature)
            loop_seconds += time.perf_counter() - t0
            loop_tokens += batch.generated_tokens
            env_seconds += batch.env_seconds
            # Raw generate on exactly the first-turn prompts of this batch, same batch size and budget.
            first = [s for s in batch.samples if s.step_index == 0]
            prompts = [s.prompt_ids for s in first]
            width = max(len(p) for p in prompts)
            ids = torch.full((len(prompts), width), tokenizer.pad_token_id)
            mask = torch.zeros_like(ids)
            for i, p in enumerate(prompts):
                ids[i, width - len(p):] = torch.tensor(p)
                mask[i, width - len(p):] = 1
            new = max(len(s.response_ids) for s in first)
            t0 = time.perf_counter()
            with torch.no_grad():
                out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=new, min_new_tokens=new,
                                     do_sample=True, top_k=0, pad_token_id=tokenizer.pad_token_id)
            raw_seconds += time.perf_counter() - t0
            raw_tokens += (out.shape[1] - width) * len(prompts)
    loop_rate, raw_rate = loop_tokens / loop_seconds, raw_tokens / raw_seconds
    print(f"env={cfg.env.name} model={args.model} slots={slots} constrained={cfg.rollout.constrained}")
    print(f"rollout loop: {loop_tokens:.0f} tokens in {loop_seconds:.2f} s = {loop_rate:.0f} tok/s (whole loop: prompts, generate, parse, env)")
    print(f"raw generate: {raw_tokens:.0f} tokens in {raw_seconds:.2f} s = {raw_rate:.0f} tok/s (first-turn prompts, fixed length)")
    print(f"ratio loop/raw tokens per second: {loop_rate / raw_rate:.2f}")
    print(f"env share of rollout wall time: {env_seconds / loop_seconds:.3f}")


if __name__ == "__main__":
    main()
