"""A deterministic WebShop-style catalogue, written in WebShop's own file schema.

``generate(out, products=N, seed=S)`` writes ``items_shuffle.json`` (product list),
``items_ins_v2.json`` (attributes + synthetic instruction per ASIN) and ``items_human_ins.json``
(human-style instruction records), so the one loader in ``products.py`` reads both these and the
real data. Same (N, seed) -> byte-identical files.
"""

from __future__ import annotations

import json
import random
import string
from pathlib import Path
from typing import Any

from pawkit_adapters.webshop.products import ATTRIBUTE_FILES, HUMAN_FILE, PRODUCT_FILES
from pawkit_adapters.webshop.reward import option_matches
from pawkit_adapters.webshop.vocabulary import BRANDS, CATEGORY_ROOTS, PRODUCT_TYPES, USES, ProductType

GENERATOR_VERSION = 1
PRODUCT_FILE, ATTRIBUTE_FILE = PRODUCT_FILES[1], ATTRIBUTE_FILES[1]
IMAGE_URL = "https://images.example.com/webshop/{asin}/{i}.jpg"

SYNTHETIC_TEMPLATES = (
    "i am looking for {a}{noun} that {be} {attrs}",
    "i need {a}{attrs} {noun}",
    "i'm looking for {a}{attrs} {noun}",
    "find me {a}{noun} with {attrs}",
    "i want {a}{attrs} {noun}",
    "i would like {a}{noun} that {be} {attrs}",
)
HUMAN_TEMPLATES = (
    "I'm looking for {a}{noun} that {be} {attrs}{opts}.",
    "Find me {a}{attrs} {noun}{opts}.",
    "I want to buy {a}{noun}, {it} should be {attrs}{opts}.",
    "Looking for {a}{attrs} {noun}{opts}, please.",
)
BULLETS = (
    "{A}: built around {attr}, so this {noun} is ready for {use}.",
    "{A} - a {noun} you can count on for {use}.",
    "{A}: customers pick it for {use}; {attr} makes the difference.",
)
DESCRIPTION_SENTENCES = (
    "The {brand} {noun} is made for {use}.",
    "Designed with {attr} in mind, it keeps up with whatever your day brings.",
    "Every {noun_l} is checked by hand before it leaves our workshop.",
    "Pair it with the rest of the {brand} range for a complete look.",
    "Customers love it for {use} thanks to its {attr} design.",
    "Backed by our 30-day satisfaction guarantee.",
)


def _asin(rng: random.Random, taken: set[str]) -> str:
    while True:
        asin = "B0" + "".join(rng.choices(string.ascii_uppercase + string.digits, k=8))
        if asin not in taken:
            taken.add(asin)
            return asin


def _article(next_word: str, plural: bool) -> str:
    """'a ' / 'an ' before a singular noun phrase, nothing before a plural one."""
    if plural:
        return ""
    return "an " if next_word[:1] in "aeiou" else "a "


def _grammar(template: str, noun: str, asked: list[str]) -> dict[str, str]:
    plural = noun.endswith("s") and not noun.endswith("ss")
    first = asked[0] if template.find("{attrs}") < template.find("{noun}") else noun
    return {"a": _article(first, plural), "be": "are" if plural else "is", "it": "they" if plural else "it"}


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _safe_values(name: str, pool: tuple[str, ...]) -> list[str]:
    """Values a goal can ask for and match: WebShop's colour normaliser mangles some words."""
    normalized = {v: v.replace("/", " | ").lower() for v in pool}
    return [v for v in pool if option_matches([normalized[v]], [(name, normalized[v])]) == 1]


def _price(rng: random.Random, lo: float, hi: float) -> str:
    value = round(rng.uniform(lo, hi)) - 0.01 if hi > 15 else round(rng.uniform(lo, hi), 1) + 0.09
    if rng.random() < 0.12:
        top = value + round(rng.uniform(2, max(3.0, value * 0.4)))
        return f"${value:,.2f} - ${top:,.2f}"
    return f"${value:,.2f}"


def _product(ptype: ProductType, asin: str, rng: random.Random) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    brand = rng.choice(BRANDS)
    attributes = rng.sample(ptype.attributes, rng.randint(3, min(5, len(ptype.attributes))))
    modifier = rng.choice(ptype.modifiers) if ptype.modifiers else ""
    title_attrs = " ".join(a.title() for a in attributes[:2] if a not in modifier.lower())
    title = f"{brand} {modifier} {ptype.noun} {title_attrs}".replace("  ", " ")
    if rng.random() < 0.5:
        title += f", {attributes[2].title()} for {rng.choice(USES[ptype.category]).title()}"
    options: dict[str, list[dict[str, str]]] = {}
    for name, pool in ptype.options:
        safe = _safe_values(name, pool)
        if len(safe) < 2 or rng.random() < 0.25:
            continue
        values = rng.sample(safe, rng.randint(2, min(4, len(safe))))
        if name != "color":
            values.sort(key=pool.index)
        label = name.title()
        options[label] = [{"value": v.title() if name == "color" else v, "image": IMAGE_URL.format(asin=asin, i=j + 1)}
                          for j, v in enumerate(values)]
    use = rng.choice(USES[ptype.category])
    sentences = rng.sample(DESCRIPTION_SENTENCES, 3)
    description = " ".join(s.format(brand=brand, noun=ptype.noun, noun_l=ptype.noun.lower(), use=use,
                                    attr=rng.choice(attributes)) for s in sentences)
    bullets = [rng.choice(BULLETS).format(A=a.upper(), attr=a, noun=ptype.noun.lower(), use=rng.choice(USES[ptype.category]))
               for a in attributes]
    rng.shuffle(bullets)
    record = {
        "asin": asin,
        "name": title,
        "full_description": description,
        "small_description": bullets,
        "pricing": _price(rng, *ptype.price),
        "images": [IMAGE_URL.format(asin=asin, i=0)],
        "product_category": " › ".join([CATEGORY_ROOTS[ptype.category], *ptype.path]),
        "category": ptype.category,
        "query": ptype.query,
        "customization_options": options or None,
        "brand": brand,
        "average_rating": round(rng.uniform(3.0, 5.0), 1),
        "total_reviews": rng.randint(0, 5000),
    }
    asked = rng.sample(attributes, rng.randint(1, min(3, len(attributes))))
    noun = ptype.noun.lower()
    template = rng.choice(SYNTHETIC_TEMPLATES)
    instruction = template.format(noun=noun, attrs=_join(asked), **_grammar(template, noun, asked))
    ins = {"asin": asin, "attributes": attributes, "instruction": instruction, "instruction_attributes": asked}
    human = []
    if rng.random() < 0.3:
        for k in range(rng.randint(1, 2)):
            wanted = rng.sample(attributes, rng.randint(1, 2))
            chosen = {name.lower(): rng.choice(vals)["value"].replace("/", " | ").lower() for name, vals in options.items()}
            opts = "".join(f", {name} {value}" if name != "color" else f" in {value}" for name, value in chosen.items())
            template = rng.choice(HUMAN_TEMPLATES)
            text = template.format(noun=noun, attrs=_join(wanted), opts=opts, **_grammar(template, noun, wanted))
            human.append({"asin": asin, "instruction": text, "instruction_attributes": wanted,
                          "instruction_options": list(chosen.values()), "attributes": attributes,
                          "options": [f"{n}: {v}" for n, v in chosen.items()],
                          "assignment_id": f"A{asin}{k}", "worker_id": f"W{rng.randrange(10**6):06d}"})
    return record, ins, human


def generate(out: Path, products: int = 1000, seed: int = 0) -> dict[str, int]:
    """Write a catalogue of ``products`` products to ``out``; returns counts."""
    if products < 1:
        raise ValueError(f"--products must be >= 1, not {products}")
    rng = random.Random(f"pawkit-webshop-{GENERATOR_VERSION}-{seed}")
    taken: set[str] = set()
    records, ins_file, human_file = [], {}, {}
    for i in range(products):
        ptype = PRODUCT_TYPES[i % len(PRODUCT_TYPES)] if i < len(PRODUCT_TYPES) else rng.choice(PRODUCT_TYPES)
        record, ins, human = _product(ptype, _asin(rng, taken), rng)
        records.append(record)
        ins_file[record["asin"]] = ins
        if human:
            human_file[record["asin"]] = human
    rng.shuffle(records)  # WebShop's product file is pre-shuffled: its first N are a random subset
    out.mkdir(parents=True, exist_ok=True)
    for name, data in ((PRODUCT_FILE, records), (ATTRIBUTE_FILE, ins_file), (HUMAN_FILE, human_file)):
        (out / name).write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return {"products": len(records), "human_instructions": sum(len(v) for v in human_file.values())}
