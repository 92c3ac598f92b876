"""pawkit plugin: the ``alfworld`` env and the ``pawkit alfworld generate`` command.

Nothing here imports alfworld or textworld at load time, so ``pawkit envs`` stays fast and
shows the install hint when they are missing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path
from typing import Any, Callable

from pawkit.hookspecs import hookimpl

INSTALL_HINT = "needs alfworld (pip install pawkit[alfworld])"


def check(options: dict[str, Any] | None = None) -> str | None:
    """Why alfworld cannot run here with these ``env.options`` (None: it can); cheap, no import."""
    for module in ("alfworld", "textworld"):
        if importlib.util.find_spec(module) is None:
            return INSTALL_HINT
    data_dir = (options or {}).get("data_dir")
    if data_dir and not Path(data_dir).expanduser().is_dir():
        return f"data_dir not found: {data_dir} (env.options.data_dir; unset it to use generated games)"
    return None


def make_env(**options: Any):
    """ALFWorld household tasks on the real TextWorld engine (official or generated games)."""
    problem = check()
    if problem:
        raise RuntimeError(problem)
    from pawkit_adapters.alfworld.env import AlfworldEnv

    return AlfworldEnv(**options)


@hookimpl
def register_envs(register: Callable[..., None]) -> None:
    register(
        "alfworld",
        make_env,
        description="ALFWorld household tasks (TextWorld engine; official data or generated games)",
        check=check,
    )


def _cmd_generate(args: argparse.Namespace) -> int:
    from pawkit.protocol import UsageError

    problem = check()
    if problem:
        raise UsageError(problem)
    from pawkit_adapters.alfworld.generate import generate

    out = Path(args.out)
    if (out / "json_2.1.1").exists() and any((out / "json_2.1.1").iterdir()):
        raise UsageError(f"{out}/json_2.1.1 already holds games; choose an empty --out folder")
    types = [int(t) for t in args.task_types.split(",")] if args.task_types else list(range(1, 7))
    report = generate(out, args.games, args.seed, types, args.max_steps, show_progress=not args.json)
    summary = {"out": str(out), "total": report.total, "made": report.made, "per_task_type": report.per_task_type,
               "unsolvable": report.unsolvable, "unsolvable_reasons": report.unsolvable_reasons,
               "impossible": report.impossible, "seconds": report.seconds}
    print(json.dumps(summary) if args.json else json.dumps(summary, indent=1))
    return 0


@hookimpl
def register_commands(subparsers) -> None:
    parser = subparsers.add_parser("alfworld", help="ALFWorld data tools", description="ALFWorld data tools")
    sub = parser.add_subparsers(dest="alfworld_command", required=True, metavar="ACTION")
    gen = sub.add_parser(
        "generate",
        help="generate solvable games (official layout) from the floor plans in the alfworld wheel",
    )
    gen.add_argument("--out", required=True, help="output folder; use it as ALFWORLD_DATA / env.options.data_dir")
    gen.add_argument("--games", type=int, default=60, help="games over all splits (~80/10/10)")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--task-types", default="", help="comma-separated subset of 1-6 (default: all)")
    gen.add_argument("--max-steps", type=int, default=50, help="drop games the expert cannot solve in this many steps")
    gen.add_argument("--json", action="store_true", help="one-line JSON summary, no progress bar")
    gen.set_defaults(func=_cmd_generate)
