"""BM25 product search over the text WebShop's Lucene index holds (pure Python, via bm25s).

Document text = lower-cased ``Title + " " + Description + " " + BulletPoints[0] + " " + options``,
as ``search_engine/convert_product_file_format.py`` writes it. Analyser: Lucene's 33 English stop
words and Lucene's *minimal* English stemmer (plural stripping) instead of Porter, because a Porter
stemmer would be an extra dependency; BM25 parameters are pyserini's (k1=0.9, b=0.4).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Sequence

import bm25s
import numpy as np

from pawkit_adapters.webshop.products import Product

TOP_K = 50
K1, B = 0.9, 0.4
_WORD = re.compile(r"(?u)\b\w\w+\b")
STOPWORDS = frozenset(bm25s.stopwords.STOPWORDS_EN)  # Lucene's English stop set


@lru_cache(maxsize=1 << 18)
def minimal_stem(word: str) -> str:
    """Lucene's EnglishMinimalStemmer: 'dresses'->'dresse', 'batteries'->'battery', 'shoes'->'shoe'."""
    n = len(word)
    if n < 3 or word[-1] != "s" or word[-2] in "us":
        return word
    if word[-2] == "e":
        if n > 3 and word[-3] == "i" and word[-4] not in "ae":
            return word[:-3] + "y"
        if word[-3] in "iaoe":
            return word
    return word[:-1]


def option_text(options: dict[str, list[str]]) -> str:
    return ", and ".join(f"{name}: {', '.join(values)}" for name, values in options.items())


def document(product: Product) -> str:
    first_bullet = product.bullets[0] if product.bullets else ""
    return " ".join([product.name, product.description, first_bullet, option_text(product.options)]).lower()


def analyse(text: str) -> list[str]:
    return [minimal_stem(w) for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


class SearchEngine:
    """Top-50 BM25 over a fixed product list; results are cached per query string."""

    def __init__(self, products: Sequence[Product]) -> None:
        self.asins = [p.asin for p in products]
        corpus = [analyse(document(p)) for p in products]
        self._vocab: dict[str, int] = {}
        ids = [[self._vocab.setdefault(w, len(self._vocab)) for w in doc] for doc in corpus]
        self._bm25 = bm25s.BM25(k1=K1, b=B, method="lucene")
        self._bm25.index(bm25s.tokenization.Tokenized(ids=ids, vocab=self._vocab), show_progress=False)
        self.search = lru_cache(maxsize=4096)(self._search)

    def _search(self, query: str) -> tuple[str, ...]:
        """ASINs of the top hits for ``query`` in BM25 order (at most 50; none if no word is known)."""
        words = [self._vocab[w] for w in analyse(query) if w in self._vocab]
        if not words:
            return ()
        scores = self._bm25.get_scores(words)
        k = min(TOP_K, len(scores))
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        ranked = sorted(top.tolist(), key=lambda d: (-scores[d], d))  # Lucene breaks ties by doc id
        return tuple(self.asins[d] for d in ranked if scores[d] > 0)
