"""BM25 passage retrieval with ``bm25s``; the index is built once per corpus file and cached.

Document text = ``title + " " + text``. Analyser (as pawkit's WebShop search): lower-case words of
two or more characters, Lucene's English stop words removed, no stemming. BM25 parameters are
pyserini's (k1=0.9, b=0.4), Lucene's scoring. The index lives in
``$PAWKIT_CACHE/searchqa/index-<sha256 of the corpus file>-a<ANALYSER>/`` (bm25s' own files plus
``vocab.json``); a later run with the same file loads it instead of indexing again.
"""

from __future__ import annotations

import json
import re
import shutil
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import bm25s
import numpy as np

from pawkit.cache import cache_subdir
from pawkit_adapters.searchqa.data import Passage, file_hash

ANALYSER = 1  # bump when analyse() changes: cached indexes of the old analyser are not reused
K1, B = 0.9, 0.4
_WORD = re.compile(r"(?u)\b\w\w+\b")
STOPWORDS = frozenset(bm25s.stopwords.STOPWORDS_EN)


def analyse(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


class Retriever:
    """Top-k BM25 over ``passages``; ``search(query, k)`` gives passage indices, best first."""

    def __init__(self, passages: Sequence[Passage], corpus_file: str | Path) -> None:
        self.passages = list(passages)
        folder = cache_subdir("searchqa") / f"index-{file_hash(corpus_file)}-a{ANALYSER}"
        vocab_file = folder / "vocab.json"
        if vocab_file.is_file():
            self._vocab: dict[str, int] = json.loads(vocab_file.read_text())
            self._bm25 = bm25s.BM25.load(str(folder), load_vocab=False, show_progress=False)
        else:
            self._vocab = {}
            ids = [[self._vocab.setdefault(w, len(self._vocab)) for w in analyse(f"{p.title} {p.text}")]
                   for p in self.passages]
            self._bm25 = bm25s.BM25(k1=K1, b=B, method="lucene")
            self._bm25.index(bm25s.tokenization.Tokenized(ids=ids, vocab=self._vocab), show_progress=False)
            tmp = folder.with_name(folder.name + ".tmp")
            self._bm25.save(str(tmp), show_progress=False)
            (tmp / "vocab.json").write_text(json.dumps(self._vocab))
            if folder.exists():  # another process won the race: keep its copy
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.replace(folder)
        self.search = lru_cache(maxsize=8192)(self._search)

    def _search(self, query: str, k: int) -> tuple[int, ...]:
        """Indices of the ``k`` best passages for ``query`` (fewer if fewer score > 0; none if no
        query word is in the corpus). Ties go to the earlier passage."""
        words = [self._vocab[w] for w in analyse(query) if w in self._vocab]
        if not words:
            return ()
        scores = self._bm25.get_scores(words)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        ranked = sorted(top.tolist(), key=lambda d: (-scores[d], d))
        return tuple(d for d in ranked if scores[d] > 0)
