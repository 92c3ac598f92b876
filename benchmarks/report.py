"""Run every benchmark with small settings and collect their printed tables into one markdown file.

    python benchmarks/report.py [--out docs/performance.md] [--threads 1] [--only NAME ...] [--list]

Each benchmark runs in its own subprocess (``OMP_NUM_THREADS=--threads``); its peak RSS is that
child's ``ru_maxrss`` from ``os.wait4``. The file gets the machine, the exact command, and per
benchmark: its command line, wall time, peak RSS and its output verbatim. Benchmarks whose
environment cannot run here (no java for ScienceWorld, env not installed) are listed as skipped.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TINY_ROLLOUT = ["rollout.tasks_per_step=2", "rollout.group_size=4"]
TEXTARENA_TINY = [  # the tiny model on a textarena game with a fixed move list (as configs/sweeps/textarena.yaml)
    "env.options.action_list=true", "rollout.constrained=true", "rollout.output_format=plain",
    "rollout.prompt_style=compact", "rollout.chat_template=false", "rollout.max_new_tokens=16",
    "rollout.tasks_per_step=8", "rollout.group_size=8",
]


@dataclass
class Bench:
    name: str
    what: str
    args: list[str]
    needs: str | None = None  # an env name that must be ready, "java", or a benchmark file
    threads_flag: bool = False  # the benchmark sets its own thread count: pass --threads
    result: dict = field(default_factory=dict)


def benches() -> list[Bench]:
    py = [sys.executable]
    return [
        Bench("paw_overhead", "PaW update-step and whole-step overhead on/off on the same batch (tiny model)",
              [*py, "benchmarks/paw_overhead.py", "--env", "gridnav", "--repeats", "3"]),
        Bench("paw_overhead_30m", "PaW overhead with a random Qwen2 of width 512 (~30 M params)",
              [*py, "benchmarks/paw_overhead.py", "--env", "gridnav", "--hidden", "512", "--repeats", "1",
               *TINY_ROLLOUT]),
        Bench("paw_overhead_smollm2_webshop", "PaW overhead in the main job's setting: SmolLM2-135M + LoRA on webshop (fp32 CPU)",
              [*py, "benchmarks/paw_overhead.py", "--env", "webshop", "--repeats", "1",
               "rollout.tasks_per_step=2", "rollout.group_size=2", "rollout.max_steps=3"], needs="webshop"),
        Bench("step_speed_smollm2_webshop", "whole step, old path (old-log-prob pass, LoRA on every block) vs fast path "
              "(sampler's log-probs reused, LoRA on the top 8 blocks), PaW off and on: SmolLM2-135M on webshop, the main job's episodes",
              [*py, "benchmarks/step_speed.py", "--env", "webshop", "--layers", "last:8", "--repeats", "2"], needs="webshop"),
        Bench("context_modes_smollm2", "step mode (history_length 2) vs trajectory mode, PaW off and on: forward tokens per "
              "episode, update and whole-step time, SmolLM2-135M + LoRA last:8 on webshop and alfworld (2x2 episodes, 5 turns)",
              [*py, "benchmarks/context_modes.py", "--envs", "webshop,alfworld", "--history", "2", "--repeats", "1"], needs="webshop"),
        Bench("paw_profile_smollm2", "torch.profiler of one update, PaW off vs on, ops grouped (attention, LM head, "
              "log-sum-exp): SmolLM2-135M + LoRA last:8 on webshop",
              [*py, "benchmarks/paw_profile.py", "--env", "webshop", "model.lora.layers=last:8"], needs="webshop"),
        Bench("rollout_gridnav", "rollout loop vs raw generate, env-time share: gridnav",
              [*py, "benchmarks/rollout_throughput.py", "--env", "gridnav", "--repeats", "2"]),
        Bench("rollout_textarena", "rollout loop vs raw generate, env-time share: textarena Secretary (action list)",
              [*py, "benchmarks/rollout_throughput.py", "--env", "textarena/Secretary-v0", "--model", "tiny", "--repeats", "2",
               *TEXTARENA_TINY], needs="textarena/Secretary-v0"),
        Bench("rollout_webshop", "rollout loop vs raw generate, env-time share: webshop",
              [*py, "benchmarks/rollout_throughput.py", "--env", "webshop", "--model", "tiny", "--repeats", "1", *TINY_ROLLOUT,
               "rollout.max_steps=5"], needs="webshop"),
        Bench("rollout_alfworld", "rollout loop vs raw generate, env-time share: alfworld",
              [*py, "benchmarks/rollout_throughput.py", "--env", "alfworld", "--model", "tiny", "--repeats", "1", *TINY_ROLLOUT,
               "rollout.max_steps=5"], needs="alfworld"),
        Bench("rollout_sciworld", "rollout loop vs raw generate, env-time share: sciworld",
              [*py, "benchmarks/rollout_throughput.py", "--env", "sciworld", "--model", "tiny", "--repeats", "1", *TINY_ROLLOUT,
               "rollout.max_steps=5"], needs="sciworld"),
        Bench("rollout_engines", "rollout engines side by side: HF generate vs a vLLM server (equal threads), SmolLM2-135M + "
              "LoRA on webshop, constrained numbered actions and think_action replies of <= 128 tokens, 2x4 episodes, 2 turns",
              [*py, "benchmarks/rollout_engines.py", "--steps", "2", "rollout.tasks_per_step=2", "rollout.group_size=4",
               "rollout.max_steps=2"], needs="webshop"),
        Bench("sciworld_steps", "ScienceWorld env steps/s: package step vs pawkit's adapter",
              [*py, "benchmarks/sciworld_steps.py", "--rounds", "1"], needs="java"),
        Bench("memory", "peak RSS and update time vs micro_batch_tokens",
              [*py, "benchmarks/memory.py", "--models", "tiny", "--budgets", "256,1024"], needs="benchmarks/memory.py",
              threads_flag=True),
    ]


def unavailable(need: str | None) -> str | None:
    """Why a benchmark cannot run here, or None."""
    if need is None:
        return None
    if need == "java":
        return None if shutil.which("java") else "needs java"
    if need.endswith(".py"):
        return None if (ROOT / need).exists() else f"{need} is not in this checkout"
    from pawkit.plugins import PluginError, registry

    try:
        status = registry("env").get(need).status()
    except PluginError as exc:
        return str(exc)
    return None if status == "ready" else status


def run_with_rss(bench: Bench, threads: int, timeout: float) -> dict:
    """Like ``run`` but reaps the child with ``os.wait4`` to read its own peak RSS."""
    # Progress bars (model weight loading) would land in the report as noise: tqdm honours TQDM_DISABLE.
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1",
               TQDM_DISABLE="1", HF_HUB_DISABLE_PROGRESS_BARS="1")
    log = Path(tempfile.gettempdir()) / f"pawkit-bench-{bench.name}-{os.getpid()}.log"
    started = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen(bench.args, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, text=True)
        deadline = started + timeout
        status = rusage = None
        while True:
            pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                _, status, rusage = os.wait4(proc.pid, 0)
                fh.write(f"\n(killed after {timeout:.0f} s)")
                break
            time.sleep(0.2)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    output = log.read_text().rstrip()
    log.unlink()
    rss_mb = rusage.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)
    return {"rc": proc.returncode, "output": output, "wall": wall, "rss_mb": rss_mb}


def machine() -> list[str]:
    import torch
    import transformers

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        mem = f", {kb / 1024 / 1024:.1f} GiB RAM"
    except (OSError, IndexError, ValueError):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        commit = f"{commit}{' + local changes' if dirty else ''}"
    except OSError:
        commit = "unknown"
    return [
        f"- CPU: {cpu}, {os.cpu_count()} logical cores{mem}; GPU: {gpu}",
        f"- {platform.platform()}, Python {platform.python_version()}, torch {torch.__version__}, "
        f"transformers {transformers.__version__}",
        f"- pawkit commit {commit}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="markdown file to write (default: docs/performance.md of this checkout)")
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of every benchmark (default 1)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per benchmark before it is killed")
    parser.add_argument("--only", action="append", help="run only these benchmarks (repeat); see --list")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and their commands")
    args = parser.parse_args()
    todo = [b for b in benches() if not args.only or b.name in args.only]
    for b in todo:
        if b.threads_flag:
            b.args += ["--threads", str(args.threads)]
    if args.list:
        for b in todo:
            print(f"{b.name}: {shlex.join(['python', *b.args[1:]])}")
        return
    command = shlex.join(["python", "benchmarks/report.py", *sys.argv[1:]])
    for b in todo:
        reason = unavailable(b.needs)
        if reason:
            b.result = {"skipped": reason}
            print(f"{b.name}: skipped ({reason})", file=sys.stderr)
            continue
        print(f"{b.name}: running {shlex.join(['python', *b.args[1:]])}", file=sys.stderr)
        b.result = run_with_rss(b, args.threads, args.timeout)
        print(f"{b.name}: exit {b.result['rc']}, {b.result['wall']:.1f} s, peak RSS {b.result['rss_mb']:.0f} MB", file=sys.stderr)

    lines = [
        "# pawkit performance",
        "",
        f"Produced by `{command}` on {time.strftime('%Y-%m-%d')} ({args.threads} torch thread(s) per benchmark).",
        "Every number below is printed by the benchmark itself; ratios are measured side by side in one run.",
        "",
        "## Machine",
        "",
        *machine(),
        "",
        "## Summary",
        "",
        "| benchmark | what | wall (s) | peak RSS (MB) | status |",
        "|---|---|---|---|---|",
    ]
    for b in todo:
        r = b.result
        if "skipped" in r:
            lines.append(f"| {b.name} | {b.what} | | | skipped: {r['skipped']} |")
        else:
            status = "ok" if r["rc"] == 0 else f"exit {r['rc']}"
            lines.append(f"| {b.name} | {b.what} | {r['wall']:.1f} | {r['rss_mb']:.0f} | {status} |")
    for b in todo:
        if "skipped" in b.result:
            continue
        lines += ["", f"## {b.name}", "", b.what + ".", "", "```", shlex.join(["python", *b.args[1:]]), "```", "",
                  "```", b.result["output"], "```"]
    out = Path(args.out) if args.out else ROOT / "docs" / "performance.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
