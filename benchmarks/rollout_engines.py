"""Rollout engines side by side in one run: HF ``generate`` vs the vLLM server (rollout.engine).

    python benchmarks/rollout_engines.py [--env webshop] [--steps 2] [--settings constrained,think] [k=v ...]

Per setting and engine, a fresh ``Trainer`` (SmolLM2-135M + LoRA from configs/webshop.yaml)
plays ``--steps`` whole training steps; printed per step: rollout seconds, generated tokens,
rollout tokens/s (generated tokens / generate seconds), whole-step seconds; per engine: the
start time (model load + engine, for vLLM the server until /health), the weight-sync time after
each update (vLLM; LoRA ``lora_sync=auto`` = merged + full reload on CPU), the peak RSS of the
trainer process and, for vLLM, of the server's processes (VmHWM summed over its process group).
Settings: ``constrained`` = numbered admissible actions through the trie (short replies),
``think`` = ``think_action`` replies of up to 128 tokens. GRPO groups share prompts
(tasks_per_step × group_size; prefix caching is on in the server). Threads: the trainer's torch
uses OMP_NUM_THREADS; the vLLM worker ``rollout.vllm.cpu_threads`` (default 1) — equal threads.
The engines alternate, one setting at a time; ratios, not absolute times, are the result.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

from pawkit.config import load_config

SETTINGS = {
    "constrained": ["rollout.constrained=true", "rollout.output_format=plain", "rollout.numbered_actions=true",
                    "rollout.max_new_tokens=8"],
    "think": ["rollout.constrained=false", "rollout.output_format=think_action", "rollout.max_new_tokens=128"],
}


def server_peak_mb(engine) -> float:
    total = 0.0
    for pid in engine.server.pids():
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            continue
    return total


def run(env: str, setting: str, engine: str, steps: int, overrides: list[str], out: Path) -> dict:
    from pawkit.train.trainer import Trainer

    cfg = load_config(env, overrides=[*SETTINGS[setting], f"rollout.engine={engine}", "paw.enabled=false",
                                      "trainer.eval_every=0", "trainer.eval_before_after=false",
                                      f"trainer.output_dir={out / f'{setting}-{engine}'}", *overrides])
    t0 = time.perf_counter()
    trainer = Trainer(cfg)
    start = time.perf_counter() - t0
    rows = []
    try:
        server = getattr(trainer.generator, "server", None)
        for _ in range(steps):
            m = trainer.train_step()
            rows.append((m["perf/rollout_seconds"], trainer.last_batch.generated_tokens, m["perf/tokens_per_second"],
                         m["perf/step_seconds"], m.get("rollout/engine_logprob_diff_max")))
        syncs = list(getattr(trainer.generator, "sync_seconds", []))
        server_mb = server_peak_mb(trainer.generator) if server is not None else 0.0
        server_start = server.start_seconds if server is not None else 0.0
    finally:
        trainer.close()
    return {"start": start, "server_start": server_start, "rows": rows, "syncs": syncs, "server_mb": server_mb,
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--env", default="webshop")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--settings", default="constrained,think")
    parser.add_argument("--out", default="/tmp/pawkit-bench-rollout-engines")
    parser.add_argument("overrides", nargs="*", help="config overrides for every run (e.g. rollout.max_steps=2)")
    args = parser.parse_args()
    out = Path(args.out)
    summary = []
    for setting in args.settings.split(","):
        results = {}
        for engine in ("hf", "vllm"):
            r = results[engine] = run(args.env, setting, engine, args.steps, args.overrides, out)
            extra = f", server ready {r['server_start']:.1f} s" if engine == "vllm" else ""
            print(f"{setting:11s} {engine:4s}: start {r['start']:6.1f} s{extra}; peak RSS trainer {r['rss_mb']:.0f} MB"
                  + (f", server {r['server_mb']:.0f} MB" if engine == "vllm" else ""), flush=True)
            for k, (roll, tokens, tps, step, diff) in enumerate(r["rows"], start=1):
                gap = f"  |Δlogp| max {diff:.1e}" if diff is not None else ""
                print(f"  step {k}: rollout {roll:7.1f} s  tokens {tokens:5d}  rollout tok/s {tps:6.1f}  whole step {step:7.1f} s{gap}",
                      flush=True)
            if r["syncs"]:
                print("  weight syncs: " + ", ".join(f"{s:.2f} s" for s in r["syncs"]), flush=True)
        hf, vl = results["hf"]["rows"][-1], results["vllm"]["rows"][-1]
        summary.append(f"| {setting} | {hf[2]:.1f} / {vl[2]:.1f} ({vl[2] / hf[2]:.2f}×) | {hf[0]:.1f} / {vl[0]:.1f} s "
                       f"({hf[0] / vl[0]:.2f}×) | {hf[3]:.1f} / {vl[3]:.1f} s ({hf[3] / vl[3]:.2f}×) |")
    print("| setting (last step) | rollout tok/s HF / vLLM | rollout HF / vLLM (speed-up) | whole step HF / vLLM (speed-up) |")
    print("|---|---|---|---|")
    print("\n".join(summary))


if __name__ == "__main__":
    main()
