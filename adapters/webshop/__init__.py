"""pawkit plugin: the ``webshop`` env and the ``pawkit webshop generate`` command.

Nothing heavy is imported at plugin load: the env is registered as a lazy
``"pawkit_adapters.webshop.env:WebShopEnv"`` string, so its module (bm25s, rapidfuzz) loads when an
env is made, and the catalogue at the env's first reset.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Callable

from pawkit.hookspecs import hookimpl


@hookimpl
def register_envs(register: Callable[..., None]) -> None:
    # A lazy "module:attr" factory: the env module is imported when the first env is made.
    register("webshop", "pawkit_adapters.webshop.env:WebShopEnv",
             description="WebShop shopping tasks: real WebShop data or a generated catalogue (no setup)")


def _cmd_generate(args: argparse.Namespace) -> int:
    from pawkit.protocol import UsageError
    from pawkit_adapters.webshop.generate import PRODUCT_FILE, generate

    out = Path(args.out)
    if (out / PRODUCT_FILE).exists() and not args.force:
        raise UsageError(f"{out}/{PRODUCT_FILE} exists; choose an empty --out folder or pass --force")
    if args.products < 1:
        raise UsageError(f"--products must be >= 1, not {args.products}")
    counts = generate(out, products=args.products, seed=args.seed)
    print(json.dumps({"out": str(out), **counts, "seed": args.seed}))
    return 0


@hookimpl
def register_commands(subparsers) -> None:
    parser = subparsers.add_parser("webshop", help="WebShop data tools", description="WebShop data tools")
    sub = parser.add_subparsers(dest="webshop_command", required=True, metavar="ACTION")
    gen = sub.add_parser("generate", help="write a deterministic catalogue in WebShop's file schema")
    gen.add_argument("--products", type=int, default=1000, help="number of products (default 1000)")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--out", required=True, help="output folder; use it as WEBSHOP_DATA / env.options.data_dir")
    gen.add_argument("--force", action="store_true", help="overwrite an existing catalogue in --out")
    gen.set_defaults(func=_cmd_generate)
