"""Answer scoring as Search-R1 and FlashRAG do it: SQuAD's answer normalisation, exact match, token F1.

``normalize_answer`` is SQuAD v1.1's (and Search-R1's ``qa_em.normalize_answer``): lower-case,
drop ASCII punctuation, drop the articles a/an/the, collapse whitespace. A prediction scores
against its best golden answer (the maximum over the list).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)
_SPECIAL = ("yes", "no", "noanswer")  # FlashRAG/HotpotQA: these only match themselves, F1 0 otherwise


def normalize_answer(text: str) -> str:
    """``"The  Eiffel-Tower!"`` -> ``"eiffeltower"``; ``"a cat, an owl"`` -> ``"cat owl"``."""
    lowered = text.lower()
    no_punct = "".join(ch for ch in lowered if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", no_punct).split())


def exact_match(prediction: str, golden: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals some normalised golden answer, else 0.0."""
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(g) for g in golden))


def _f1(pred: str, gold: str) -> float:
    if (pred in _SPECIAL or gold in _SPECIAL) and pred != gold:
        return 0.0
    pred_tokens, gold_tokens = pred.split(), gold.split()
    same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def f1_score(prediction: str, golden: Sequence[str]) -> float:
    """SQuAD token F1 of the normalised strings, best over ``golden`` (0.0 for an empty list), in [0, 1]."""
    pred = normalize_answer(prediction)
    return max((_f1(pred, normalize_answer(g)) for g in golden), default=0.0)
