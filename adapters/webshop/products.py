"""The catalogue and goals, read from WebShop's real files (or our generated ones, same schema).

Files, looked up in ``data_dir`` (env option) or ``$WEBSHOP_DATA``:
``items_shuffle_1000.json``/``items_shuffle.json`` (product list), ``items_ins_v2_1000.json``/
``items_ins_v2.json`` (asin -> attributes + synthetic instruction) and ``items_human_ins.json``
(asin -> human instruction records). The loader reproduces WebShop's ``load_products`` and
``get_synthetic_goals``/``get_human_goals``; unlike WebShop, every random draw (ranged prices,
price ceilings) comes from one seeded generator and the goal order from a fixed shuffle, so the
test/dev/train split is the same partition in every process.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pawkit.protocol import UsageError

PRODUCT_FILES = ("items_shuffle_1000.json", "items_shuffle.json")
ATTRIBUTE_FILES = ("items_ins_v2_1000.json", "items_ins_v2.json")
HUMAN_FILE = "items_human_ins.json"
PRICE_RANGE = [10.0 * i for i in range(1, 100)]
NO_PRICE_CEILING = 1000000.0
GOAL_SHUFFLE_SEED = 233  # WebShop's own goal-shuffle seed
DEFAULT_PRICE = 100.0
SPLIT_RANGES = {"test": (0, 500), "dev": (500, 1500), "train": (1500, None)}
SMALL_SPLIT_FRACTIONS = {"test": 0.1, "dev": 0.2}  # used when there are fewer than 2,000 goals


class DataError(UsageError):
    """A malformed or missing data file; the message names the file (and record).

    A UsageError (a ValueError) because the fix is in the config (``env.options.data_dir``) or
    the files it points at, so the CLI prints it as one line.
    """


@dataclass
class Product:
    asin: str
    name: str
    description: str
    bullets: list[str]
    attributes: list[str]
    options: dict[str, list[str]]
    query: str
    category: str
    product_category: str
    pricing: list[float]
    price_tag: str
    price: float  # what the reward compares with the ceiling (a draw inside a price range)
    main_image: str = ""
    instruction_text: str | None = None
    instruction_attributes: list[str] = field(default_factory=list)
    human_instructions: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Goal:
    asin: str
    instruction_text: str
    attributes: list[str]
    options: dict[str, str] | list[str]  # synthetic: name -> value; human: list of values
    price_upper: float
    name: str
    query: str
    category: str
    product_category: str
    weight: float = 1.0


def parse_pricing(raw: Any) -> list[float]:
    """'$12.99' -> [12.99]; '$1,299.00 - $1,499.00' -> [1299.0, 1499.0]; empty -> [100.0]."""
    if not raw:
        return [DEFAULT_PRICE]
    prices = []
    for piece in str(raw).split("$")[1:]:
        digits = re.sub(r"[^\d.]", "", piece)
        if digits:
            prices.append(float(digits))
    return prices[:2] or [DEFAULT_PRICE]


def price_tag(pricing: list[float]) -> str:
    return f"${pricing[0]}" if len(pricing) == 1 else f"${pricing[0]} to ${pricing[1]}"


def _normalize_option(value: str) -> str:
    return value.strip().replace("/", " | ").lower()


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}); re-download or regenerate it") from None


def _find(folder: Path, names: tuple[str, ...], prefer_small: bool) -> Path:
    order = names if prefer_small else tuple(reversed(names))
    for name in order:
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"{folder} has no {' or '.join(names)}; run `pawkit webshop generate --out {folder}` or point data_dir at WebShop's data/")


def _product(record: Any, index: int, path: Path, attrs: dict[str, Any], rng: random.Random) -> Product | None:
    where = f"{path.name} record {index}"
    if not isinstance(record, dict):
        raise DataError(f"{where} is a {type(record).__name__}, expected an object with asin/name/...")
    asin = record.get("asin")
    if not isinstance(asin, str) or asin == "nan" or len(asin) > 10:
        return None  # WebShop skips these silently
    try:
        bullets = record.get("small_description") or []
        if isinstance(bullets, str):
            bullets = [bullets]
        options: dict[str, list[str]] = {}
        for option_name, values in (record.get("customization_options") or {}).items():
            if values is None:
                continue
            options[option_name.lower()] = [_normalize_option(v["value"]) for v in values]
        pricing = parse_pricing(record.get("pricing"))
        price = pricing[0] if len(pricing) == 1 else rng.uniform(pricing[0], pricing[1])
        info = attrs.get(asin) or {}
        images = record.get("images") or [""]
        return Product(
            asin=asin,
            name=str(record["name"]),
            description=str(record.get("full_description") or ""),
            bullets=[str(b) for b in bullets],
            attributes=list(info.get("attributes") or ["DUMMY_ATTR"]),
            options=options,
            query=str(record.get("query") or "").lower().strip(),
            category=str(record.get("category") or ""),
            product_category=str(record.get("product_category") or ""),
            pricing=pricing,
            price_tag=price_tag(pricing),
            price=price,
            main_image=str(images[0] or ""),
            instruction_text=info.get("instruction"),
            instruction_attributes=list(info.get("instruction_attributes") or []),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"{where} (asin {asin}) is malformed: {type(exc).__name__} {exc}; expected WebShop's product schema") from None


def load_products(folder: Path, num_products: int | None = None, human: bool = False, prefer_small: bool = True,
                  seed: int = 42) -> list[Product]:
    """WebShop's ``load_products``: skip bad ASINs, keep the first of duplicates, attach attributes."""
    rng = random.Random(seed)
    product_path = _find(folder, PRODUCT_FILES, prefer_small)
    attr_path = _find(folder, ATTRIBUTE_FILES, prefer_small)
    records = _read_json(product_path)
    if not isinstance(records, list):
        raise DataError(f"{product_path} must hold a JSON list of products, not a {type(records).__name__}")
    attrs = _read_json(attr_path)
    if not isinstance(attrs, dict):
        raise DataError(f"{attr_path} must hold a JSON object keyed by ASIN, not a {type(attrs).__name__}")
    for asin, value in attrs.items():
        if not isinstance(value, dict):
            raise DataError(f"{attr_path} entry {asin!r} is a {type(value).__name__}, expected an object with 'attributes'")
    if num_products is not None:
        records = records[:num_products]
    seen: set[str] = set()
    products = []
    for i, record in enumerate(records):
        product = _product(record, i, product_path, attrs, rng)
        if product is None or product.asin in seen:
            continue
        seen.add(product.asin)
        products.append(product)
    if human:
        human_path = folder / HUMAN_FILE
        if not human_path.is_file():
            raise DataError(f"{folder} has no {HUMAN_FILE}; human_goals=true needs it (or use synthetic goals)")
        by_asin = _read_json(human_path)
        if not isinstance(by_asin, dict):
            raise DataError(f"{human_path} must hold a JSON object keyed by ASIN, not a {type(by_asin).__name__}")
        for product in products:
            records = by_asin.get(product.asin) or []
            if not isinstance(records, list):
                raise DataError(f"{human_path} entry {product.asin!r} must be a list of instruction records")
            product.human_instructions = records
    if not products:
        raise DataError(f"{product_path} holds no usable product (every asin missing, 'nan' or longer than 10 characters)")
    return products


def price_ceiling(price: float, rng: random.Random) -> tuple[float, str]:
    """The 2nd-4th multiple of ten above ``price`` (WebShop's draw), and the instruction suffix."""
    above = [p for p in PRICE_RANGE if p > price][:4]
    if len(above) < 2:
        return NO_PRICE_CEILING, ""
    upper = max(rng.sample(above, 2))
    return upper, f", and price lower than {upper:.2f} dollars"


def synthetic_goals(products: list[Product], rng: random.Random) -> list[Goal]:
    goals = []
    for product in products:
        if product.instruction_text is None:
            continue
        if not product.instruction_attributes:
            raise DataError(f"items_ins_v2 entry {product.asin!r} has an instruction but no instruction_attributes")
        upper, price_text = price_ceiling(product.price, rng)
        names = sorted(product.options)
        for combination in itertools.product(*(product.options[n] for n in names)):
            chosen = dict(zip(names, combination))
            option_text = ", and ".join(f"{k}: {v}" for k, v in chosen.items())
            goals.append(Goal(
                asin=product.asin,
                instruction_text=product.instruction_text + (f" with {option_text}" if option_text else "") + price_text,
                attributes=list(product.instruction_attributes),
                options=chosen,
                price_upper=upper,
                name=product.name,
                query=product.query,
                category=product.category,
                product_category=product.product_category,
            ))
    counts = Counter(a for g in goals for a in g.attributes)
    for goal in goals:
        goal.weight = sum(1.0 / counts[a] for a in goal.attributes) / len(goal.attributes)
    return goals


def human_goals(products: list[Product], rng: random.Random) -> list[Goal]:
    goals = []
    for product in products:
        for i, record in enumerate(product.human_instructions):
            try:
                attributes = list(record.get("instruction_attributes") or [])
                if not attributes:
                    continue  # WebShop counts these as "skipped"
                upper, price_text = price_ceiling(product.price, rng)
                goals.append(Goal(
                    asin=product.asin,
                    instruction_text=str(record["instruction"]).strip(".") + price_text,
                    attributes=attributes,
                    options=[str(o) for o in record.get("instruction_options") or []],
                    price_upper=upper,
                    name=product.name,
                    query=product.query,
                    category=product.category,
                    product_category=product.product_category,
                ))
            except (KeyError, AttributeError, TypeError) as exc:
                raise DataError(f"{HUMAN_FILE} entry {product.asin!r} record {i} is malformed: {type(exc).__name__} {exc}") from None
    return goals


def build_goals(products: list[Product], human: bool = False, seed: int = 42) -> list[Goal]:
    """All goals in WebShop's order: built product by product, then shuffled with seed 233."""
    rng = random.Random(seed + 1)
    goals = human_goals(products, rng) if human else synthetic_goals(products, rng)
    random.Random(GOAL_SHUFFLE_SEED).shuffle(goals)
    return goals


def split_indices(n_goals: int) -> dict[str, range]:
    """test 0-499, dev 500-1499, train the rest (WebShop's baseline split) of the shuffled goals.

    A catalogue with fewer than 2,000 goals is split 10% / 20% / 70% instead, so train is never empty.
    """
    if n_goals >= 2000:
        return {name: range(lo, n_goals if hi is None else hi) for name, (lo, hi) in SPLIT_RANGES.items()}
    n_test = max(1, int(n_goals * SMALL_SPLIT_FRACTIONS["test"]))
    n_dev = max(1, int(n_goals * SMALL_SPLIT_FRACTIONS["dev"]))
    return {"test": range(0, n_test), "dev": range(n_test, n_test + n_dev), "train": range(n_test + n_dev, n_goals)}


def data_dir_from_env() -> Path | None:
    value = os.environ.get("WEBSHOP_DATA")
    return Path(value).expanduser() if value else None
