"""WebShop's purchase reward (``goal.py: get_reward``), reproduced rule for rule.

reward = r_type x (attribute matches + option matches + price ok) / (#attributes + #options + 1)

The quirks are kept on purpose, so scores compare with published WebShop numbers: a zero title
overlap zeroes the reward even when query and category match; synthetic goal options are
compared as ``(name, value)`` tuples; colour normalisation is a substring test against a fixed
word list (``stonewashed`` -> ``ash``); the purchased ASIN is never checked.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from rapidfuzz import fuzz
from rapidfuzz.utils import default_process

from pawkit_adapters.webshop.nouns import nouns
from pawkit_adapters.webshop.products import Goal, Product

# WebShop's fixed colour vocabulary (engine/normalize.py), alphabetical; first substring wins.
COLOR_SET: tuple[str, ...] = tuple(
    """alabaster apricot aqua ash asphalt azure banana beige black blue blush bordeaux bronze brown
    burgundy camel camo caramel champagne charcoal cheetah chestnut chocolate christmas coffee cognac
    copper coral cranberry cream crystal dark denim eggplant elephant espresso fuchsia gold granite
    grape graphite grass gray green grey heather indigo ivory ivy khaki lavender lemon leopard light
    lilac lime magenta maroon mauve merlot midnight mint mocha multicolor mushroom mustard natural
    navy nude olive orange peach pewter pink plum purple rainbow red rose royal rust sand sapphire
    seashell silver skull slate steel stone stonewash sunflower tan taupe teal tiger turquoise violet
    walnut wheat white wine yellow""".split()
)
FUZZ_THRESHOLD = 85
CATEGORY_SEP = "›"

Option = str | tuple[str, ...]


def normalize_color(value: Option) -> Option:
    """The first colour word contained in ``value``; for a tuple, 'contained' means an equal element."""
    for color in COLOR_SET:
        if color in value:
            return color
    return value


def _fuzz_text(value: Option) -> str:
    """thefuzz's view of a value: ``str()`` (tuples too), ASCII only, lower-case, alnum tokens."""
    text = str(value).encode("ascii", "ignore").decode()
    return default_process(text)


def token_set_ratio(a: Option, b: Option) -> int:
    """thefuzz.fuzz.token_set_ratio: full processing, then rounded to an int."""
    pa, pb = _fuzz_text(a), _fuzz_text(b)
    if not pa or not pb:
        return 0
    return int(round(fuzz.token_set_ratio(pa, pb)))


def type_reward(product: Product, goal: Goal) -> dict[str, Any]:
    query_match = product.query == goal.query
    mine = {x.strip() for x in product.product_category.split(CATEGORY_SEP)}
    wanted = {x.strip() for x in goal.product_category.split(CATEGORY_SEP)}
    category_match = len(mine & wanted) >= 2
    bought, desired = nouns(product.name), nouns(goal.name)
    title_score = 0.2 if not desired else len(set(bought) & set(desired)) / len(desired)
    r_type = 1.0
    if not (query_match or category_match or title_score > 0.2):
        r_type = 0.5
    if title_score < 0.1:
        r_type = 0.1
    if title_score == 0.0:
        r_type = 0.0
    return {"r_type": r_type, "query_match": query_match, "category_match": category_match, "title_score": title_score}


def attribute_matches(product: Product, goal_attributes: Sequence[str]) -> int:
    title, bullets, description = product.name.lower(), " ".join(product.bullets).lower(), product.description.lower()
    matches = 0
    for wanted in goal_attributes:
        if any(token_set_ratio(have, wanted) > FUZZ_THRESHOLD for have in product.attributes):
            matches += 1
        elif wanted in title or wanted in bullets or wanted in description:
            matches += 1
    return matches


def option_matches(purchased: Iterable[str], goal_options: Iterable[Option]) -> int:
    bought = [normalize_color(o) for o in purchased]
    matches = 0
    for wanted in (normalize_color(o) for o in goal_options):
        if any(token_set_ratio(have, wanted) > FUZZ_THRESHOLD for have in bought):
            matches += 1
    return matches


def goal_option_items(goal: Goal) -> list[Option]:
    """Synthetic goals compare ``(name, value)`` tuples (WebShop's ``dict.items()``), human goals values."""
    if isinstance(goal.options, dict):
        return list(goal.options.items())
    return list(goal.options)


def get_reward(product: Product, goal: Goal, price: float, options: dict[str, str]) -> tuple[float, dict[str, Any]]:
    """The score of buying ``product`` at ``price`` with ``options`` selected, and its breakdown."""
    info = type_reward(product, goal)
    wanted_options = goal_option_items(goal)
    n_att, n_opt = len(goal.attributes), len(wanted_options)
    denominator = n_att + n_opt + 1
    att = attribute_matches(product, goal.attributes)
    opt = option_matches(list(options.values()), wanted_options)
    price_ok = float(price <= goal.price_upper)
    reward = info["r_type"] * (att + opt + price_ok) / denominator
    info.update(
        r_att=att / n_att if n_att else None,
        w_att=n_att / denominator,
        r_price=price_ok,
        w_price=1 / denominator,
        attribute_matches=att,
        option_matches=opt,
    )
    if n_opt:
        info.update(r_option=opt / n_opt, w_option=n_opt / denominator)
    return reward, info
