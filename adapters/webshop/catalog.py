"""One loaded shop (products, goals, splits, search index), shared by every env in a process.

The default catalogue is generated on first use into ``~/.cache/pawkit/webshop/<params>``
(``$PAWKIT_CACHE`` overrides the root), written to a temporary folder and renamed into place so
parallel workers never read a half-written file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from pawkit_adapters.webshop.generate import GENERATOR_VERSION, generate
from pawkit_adapters.webshop.products import (
    DataError,
    Goal,
    Product,
    build_goals,
    data_dir_from_env,
    load_products,
    split_indices,
)
from pawkit_adapters.webshop.search import SearchEngine

from pawkit.cache import cache_dir, cache_subdir


@dataclass
class Catalog:
    products: dict[str, Product]
    goals: list[Goal]
    splits: dict[str, range]
    engine: SearchEngine
    data_dir: Path


_cache: dict[tuple, Catalog] = {}
_lock = threading.Lock()


def cache_root() -> Path:
    return cache_dir() / "webshop"


def generated_dir(products: int, seed: int) -> Path:
    """The cached generated catalogue for (products, seed), created if missing."""
    target = cache_root() / f"generated-v{GENERATOR_VERSION}-p{products}-s{seed}"
    if (target / "items_shuffle.json").is_file():
        return target
    cache_subdir("webshop")  # an unwritable $PAWKIT_CACHE: one line, not an OSError traceback
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
    try:
        generate(tmp, products=products, seed=seed)
        try:
            tmp.rename(target)
        except OSError:  # another process won the race; its copy is identical
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_dir(data_dir: str | os.PathLike | None, products: int, seed: int) -> Path:
    if data_dir:
        folder = Path(data_dir).expanduser()
        if not folder.is_dir():
            raise DataError(f"webshop data_dir {folder} is not a folder; fix env.options.data_dir or WEBSHOP_DATA")
        return folder
    return data_dir_from_env() or generated_dir(products, seed)


def load_catalog(data_dir: Path, num_products: int | None, human_goals: bool, prefer_small: bool, seed: int) -> Catalog:
    key = (str(data_dir.resolve()), num_products, human_goals, prefer_small, seed)
    with _lock:
        if key not in _cache:
            products = load_products(data_dir, num_products, human=human_goals, prefer_small=prefer_small, seed=seed)
            goals = build_goals(products, human=human_goals, seed=seed)
            if not goals:
                raise DataError(f"{data_dir} yields no {'human' if human_goals else 'synthetic'} goals; "
                                 "check the instruction files")
            _cache[key] = Catalog(
                products={p.asin: p for p in products},
                goals=goals,
                splits=split_indices(len(goals)),
                engine=SearchEngine(products),
                data_dir=data_dir,
            )
        return _cache[key]
