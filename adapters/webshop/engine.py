"""The shop's page flow, action parsing, click matching and ``text`` observations.

This is WebShop's ``WebAgentTextEnv`` + ``SimBrowser`` + templates, reduced to what the ``text``
observation mode shows: every page is the list of its visible text pieces joined by `` [SEP] ``,
and the clickables are the page's lower-cased button texts, product ASINs and option values.
An action that is not ``search[<non-empty>]`` or ``click[<current clickable>]`` changes nothing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Callable

from pawkit_adapters.webshop.products import Goal, Product
from pawkit_adapters.webshop.reward import get_reward

SEP = " [SEP] "
PER_PAGE = 10
_ACTION = re.compile(r"(.+)\[(.+)\]")  # WebShop's parse_action: greedy, anchored at the start only

SEARCH, RESULTS, ITEM, SUB, DONE = "search", "results", "item", "sub", "done"
BACK, PREV, NEXT, BUY = "back to search", "< prev", "next >", "buy now"
SUB_PAGES = ("description", "features", "reviews")


def parse_action(action: str) -> tuple[str, str | None]:
    """``name[arg]`` -> (name, lower-cased arg); anything else -> (action, None)."""
    match = _ACTION.match(action)
    if match is None:
        return action, None
    return match.group(1), match.group(2).lower()


@dataclass
class Outcome:
    valid: bool
    reward: float = 0.0
    done: bool = False
    info: dict = field(default_factory=dict)


@dataclass
class Session:
    """One shopper's browser state; WebShop keeps the same fields in its session dict."""

    goal: Goal
    page: str = SEARCH
    keywords: str = ""
    page_num: int = 1
    asin: str | None = None
    sub_page: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    reward: float | None = None


class Shop:
    """Pages and transitions over a product table and a search function."""

    def __init__(self, products: dict[str, Product], search: Callable[[str], tuple[str, ...]], per_page: int = PER_PAGE) -> None:
        """``per_page``: results shown per results page (WebShop: 10; checked by ``WebShopEnv``)."""
        self.products = products
        self.search = search
        self.per_page = per_page

    # --- pages -------------------------------------------------------------------------
    def results(self, session: Session) -> list[str]:
        return [a for a in self.search(session.keywords) if a in self.products]

    def page_hits(self, session: Session) -> list[Product]:
        hits = self.results(session)
        start = (session.page_num - 1) * self.per_page
        return [self.products[a] for a in hits[start:start + self.per_page]]

    def text(self, session: Session) -> str:
        return SEP.join(part for part in self._parts(session) if part)

    def _parts(self, s: Session) -> list[str]:
        head = ["Instruction:", s.goal.instruction_text]
        if s.page == SEARCH:
            return ["WebShop", *head, "Search"]
        if s.page == RESULTS:
            parts = [*head, "Back to Search", f"Page {s.page_num} (Total results: {len(self.results(s))})"]
            if s.page_num > 1:
                parts.append("< Prev")
            parts.append("Next >")
            for p in self.page_hits(s):
                parts += [p.asin.upper(), p.name, p.price_tag]
            return parts
        product = self.products[s.asin]  # type: ignore[index]
        if s.page == ITEM:
            parts = [*head, "Back to Search", "< Prev"]
            for name, values in product.options.items():
                parts += [name, *values]
            return parts + [product.name, f"Price: {product.price_tag}", "Rating: N.A.",
                            "Description", "Features", "Reviews", "Buy Now"]
        if s.page == SUB:
            body = {"description": [product.description], "features": list(product.bullets), "reviews": []}
            return [*head, "Back to Search", "< Prev", *body[s.sub_page]]  # type: ignore[index]
        return ["Thank you for shopping with us!", "Your code:", "", "Purchased", "asin", product.asin,
                "options", json.dumps(s.options), "Your score (min 0.0, max 1.0)", repr(s.reward)]

    def clickables(self, s: Session) -> list[str]:
        if s.page == SEARCH:
            return ["search"]
        if s.page == RESULTS:
            head = [BACK] + ([PREV] if s.page_num > 1 else []) + [NEXT]
            return head + [p.asin.lower() for p in self.page_hits(s)]
        if s.page == ITEM:
            product = self.products[s.asin]  # type: ignore[index]
            return [BACK, PREV, *SUB_PAGES, BUY] + [v for values in product.options.values() for v in values]
        if s.page == SUB:
            return [BACK, PREV]
        return []

    # --- transitions ---------------------------------------------------------------------
    def act(self, s: Session, action: str) -> Outcome:
        if s.page == DONE:
            return Outcome(valid=False, done=True)
        name, arg = parse_action(action)
        if name == "search" and arg:
            s.page, s.keywords, s.page_num, s.asin, s.sub_page, s.options = RESULTS, arg, 1, None, None, {}
            return Outcome(valid=True)
        if name != "click" or arg is None or arg == "search" or arg not in self.clickables(s):
            return Outcome(valid=False)
        return self._click(s, arg)

    def _click(self, s: Session, arg: str) -> Outcome:
        if arg == BACK:
            s.page, s.keywords, s.page_num, s.asin, s.sub_page, s.options = SEARCH, "", 1, None, None, {}
        elif arg == BUY:
            product = self.products[s.asin]  # type: ignore[index]
            reward, info = get_reward(product, s.goal, product.price, s.options)
            s.page, s.reward = DONE, reward
            return Outcome(valid=True, reward=reward, done=True, info=info)
        elif s.page == RESULTS and arg in (NEXT, PREV):
            s.page_num += 1 if arg == NEXT else -1
        elif s.page == RESULTS:
            s.page, s.asin, s.options = ITEM, self._asin(s, arg), {}
        elif s.page == ITEM and arg == PREV:
            s.page, s.asin, s.options = RESULTS, None, {}
        elif s.page == ITEM and arg in SUB_PAGES:
            s.page, s.sub_page = SUB, arg
        elif s.page == ITEM:
            s.options[self._option_name(s, arg)] = arg
        else:  # "< prev" on a sub-page: back to the item page, options kept
            s.page, s.sub_page = ITEM, None
        return Outcome(valid=True)

    def _asin(self, s: Session, arg: str) -> str:
        return next(p.asin for p in self.page_hits(s) if p.asin.lower() == arg)

    def _option_name(self, s: Session, value: str) -> str:
        """The group of a clicked value; like WebShop's text-to-clickable map, the last group wins."""
        product = self.products[s.asin]  # type: ignore[index]
        return [name for name, values in product.options.items() if value in values][-1]
