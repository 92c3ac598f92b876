"""Dependency-free stand-in for WebShop's spaCy noun filter (``title_score``).

WebShop tags both titles with spaCy ``en_core_web_sm`` and keeps NOUN/PROPN tokens. Shipping
spaCy plus a model download is exactly the setup pain we avoid, so we keep a token when it is
a *content word that is not obviously an adjective, number or function word*. Product titles are
mostly Title Case noun stacks (spaCy tags most of their words PROPN/NOUN anyway), so this keeps
nearly the same set; it differs on adjectives outside our list (spaCy drops them, we keep
them) and on words spaCy tags by context (e.g. "running" in "Running Shoes" may be NOUN or VERB).
Both sides of the comparison use the same function, so the purchased goal product always scores
title_score 1.0, as with spaCy.
"""

from __future__ import annotations

import re

# spaCy splits "Men's" into "Men" + "'s" and "T-Shirt" into "T", "-", "Shirt"; splitting on
# every non-alphanumeric character gives the same word pieces.
_TOKEN = re.compile(r"[A-Za-z0-9]+")

FUNCTION_WORDS = frozenset(
    """a an the and or nor but so yet for of in on at to from by with without into onto over under
    up down out off about above below between among through during before after since until
    per via than as is are was were be been being am do does did has have had will would can
    could should may might must shall this that these those it its it's he she they them their
    our your my his her we you i me us what which who whom whose where when why how all any
    both each every few more most other some such no not only own same too very just also
    s t ll d re ve m o x w""".split()
)

ADJECTIVES = frozenset(
    """new large small big mini little long short tall high low wide narrow thick thin light heavy
    soft hard warm cool cold hot dry wet fresh natural organic premium professional portable
    compact adjustable durable waterproof water resistant wireless electric digital smart classic
    modern vintage casual formal elegant comfortable lightweight breathable sturdy strong
    extra super ultra best great good fine easy quick fast slow full half double single
    multi multiple universal original genuine real pure clear black white red blue green yellow
    pink purple orange brown gray grey beige navy silver gold golden ivory khaki dark bright
    cute pretty beautiful stylish fashionable sweet sour spicy salty delicious healthy
    non free gluten sugar vegan round square rectangular oval flat slim plus regular standard
    womens mens unisex""".split()
)

_ADJ_SUFFIXES = ("ous", "ful", "less", "able", "ible", "ish", "ive", "ly")


def is_noun_like(token: str) -> bool:
    word = token.lower()
    if not any(c.isalpha() for c in word):  # numbers and sizes like "12": spaCy tags NUM
        return False
    if word in FUNCTION_WORDS or word in ADJECTIVES:
        return False
    return not (len(word) > 5 and word.endswith(_ADJ_SUFFIXES))


def nouns(text: str) -> list[str]:
    """Lower-cased noun-like tokens of ``text``, in order, duplicates kept (WebShop counts them)."""
    return [t.lower() for t in _TOKEN.findall(text) if is_noun_like(t)]
