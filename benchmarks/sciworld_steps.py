"""ScienceWorld env steps/s: the package's ``step`` (rebuilds every valid action each step)
against pawkit's adapter (raw server step, valid actions on demand), side by side on one JVM.

    python benchmarks/sciworld_steps.py [--task boil] [--variation 0] [--rounds 3]

Each round replays the variation's gold path once per variant, alternating, so both see the
same states and the same machine load. Reset time is excluded; JVM start time is printed.
"""

from __future__ import annotations

import argparse
import time

from pawkit.protocol import Task
from pawkit_adapters.sciworld.env import SciWorldEnv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="boil")
    parser.add_argument("--variation", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    task = Task(id=f"{args.task}-{args.variation}", info={"task_name": args.task, "variation": args.variation})
    lazy = SciWorldEnv(args.task)
    listing = SciWorldEnv(args.task, valid_actions=True)
    try:
        lazy.reset(task)
        print(f"JVM start: {lazy.jvm_start_seconds:.2f} s")
        sw = lazy.engine.sw
        sw.load(args.task, args.variation, "easy", generateGoldPath=True)
        gold = list(sw.get_gold_action_sequence())
        print(f"{args.task} variation {args.variation}: gold path of {len(gold)} commands")

        def package() -> int:
            sw.load(args.task, args.variation, "easy")
            sw.reset()
            n = 0
            started = time.perf_counter()
            for command in gold:
                n += 1
                if sw.step(command)[2]:
                    break
            return n, time.perf_counter() - started

        def adapter(env: SciWorldEnv):
            def run():
                env.reset(task)
                n = 0
                started = time.perf_counter()
                for command in gold:
                    n += 1
                    if env.step(command).done:
                        break
                return n, time.perf_counter() - started

            return run

        variants = {"package step (info['valid'])": package, "adapter, lazy valid actions": adapter(lazy),
                    "adapter, valid_actions=True": adapter(listing)}
        totals = {name: [0, 0.0] for name in variants}
        for _ in range(args.rounds):
            for name, run in variants.items():
                n, seconds = run()
                totals[name][0] += n
                totals[name][1] += seconds
        rates = {name: n / s for name, (n, s) in totals.items()}
        for name, rate in rates.items():
            print(f"{name:32s} {rate:7.1f} steps/s  ({1000 / rate:6.1f} ms/step)")
        base = rates["package step (info['valid'])"]
        print(f"speed-up of lazy valid actions: {rates['adapter, lazy valid actions'] / base:.2f}x")
    finally:
        lazy.close()
        listing.close()


if __name__ == "__main__":
    main()
