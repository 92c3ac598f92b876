"""Reading Search-R1 / FlashRAG files: a passage corpus and question sets, JSONL or Parquet.

Corpus rows: ``{"id", "contents"}`` (Search-R1's wiki-18, ``contents`` = ``'"Title"\\ntext'``) or
``{"id", "title", "text"}`` (FlashRAG/DPR). Question rows: ``question`` and ``golden_answers`` (a
list, or one string); Search-R1's processed parquet also works through its
``reward_model.ground_truth.target``. Other keys are kept in ``extra`` and otherwise ignored.
Parquet needs ``pyarrow`` (not a pawkit dependency): without it a ``.parquet`` path is one
``UsageError`` line naming the package. Every bad file is one ``UsageError`` naming the option.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from pawkit.protocol import UsageError


@dataclass(frozen=True)
class Passage:
    id: str
    title: str
    text: str


@dataclass(frozen=True)
class Question:
    question: str
    golden_answers: tuple[str, ...]
    hops: tuple[dict[str, str], ...] = ()  # generated data only: the expert's queries and gold passages
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


def _rows(path: Path, option: str) -> Iterator[dict[str, Any]]:
    if not path.is_file():
        raise UsageError(f"env.options.{option}: {path} is not a file")
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq  # optional: only for .parquet files
        except ImportError:
            raise UsageError(f"env.options.{option}: reading {path.name} needs pyarrow (pip install pyarrow), "
                             "or convert it to .jsonl") from None
        yield from pq.read_table(path).to_pylist()
        return
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UsageError(f"env.options.{option}: {path} line {number} is not JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise UsageError(f"env.options.{option}: {path} line {number} is not a JSON object")
            yield row


def split_contents(contents: str) -> tuple[str, str]:
    """Search-R1's ``contents``: first line the title (quotes stripped), the rest the text."""
    title, _, text = contents.partition("\n")
    return title.strip().strip('"'), text.strip()


def load_corpus(path: str | Path) -> list[Passage]:
    """Passages in file order; a row without ``id`` is numbered by its position."""
    path = Path(path).expanduser()
    passages = []
    for n, row in enumerate(_rows(path, "corpus")):
        if "contents" in row:
            title, text = split_contents(str(row["contents"]))
        elif "text" in row:
            title, text = str(row.get("title") or ""), str(row["text"])
        else:
            raise UsageError(f"env.options.corpus: {path} row {n + 1} has neither 'contents' nor 'text' "
                             f"(keys: {', '.join(sorted(row)) or 'none'})")
        passages.append(Passage(str(row.get("id", n)), title, text))
    if not passages:
        raise UsageError(f"env.options.corpus: {path} has no passages")
    return passages


def _answers(row: dict[str, Any]) -> list[str] | None:
    gold = row.get("golden_answers")
    if gold is None:  # Search-R1's processed layout
        gold = ((row.get("reward_model") or {}).get("ground_truth") or {}).get("target")
    if gold is None:
        return None
    if isinstance(gold, str):
        return [gold]
    return [str(g) for g in (gold.tolist() if hasattr(gold, "tolist") else gold)]


def load_questions(path: str | Path, option: str) -> list[Question]:
    """Questions in file order (``option``: the env option named in errors, ``train`` or ``test``)."""
    path = Path(path).expanduser()
    out = []
    for n, row in enumerate(_rows(path, option)):
        answers = _answers(row)
        if not isinstance(row.get("question"), str) or not answers:
            raise UsageError(f"env.options.{option}: {path} row {n + 1} needs 'question' and a non-empty "
                             f"'golden_answers' (keys: {', '.join(sorted(row)) or 'none'})")
        hops = tuple(dict(h) for h in row.get("hops") or ())
        extra = {k: v for k, v in row.items() if k not in ("question", "golden_answers", "hops")}
        out.append(Question(row["question"].strip(), tuple(answers), hops, extra))
    if not out:
        raise UsageError(f"env.options.{option}: {path} has no questions")
    return out


def file_hash(path: str | Path) -> str:
    """sha256 of the file's bytes, hex, first 16 characters (the index cache key)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write atomically (a temp file renamed), so a killed run never leaves half a file in the cache."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)
