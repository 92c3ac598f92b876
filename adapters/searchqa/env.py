"""The ``searchqa`` env: answer a question by searching a passage corpus (Search-R1's protocol).

Each turn the agent replies ``<search> query </search>`` (the top-k BM25 passages come back as
the next observation, between ``<information>`` tags, as Search-R1 shows them) or
``<answer> text </answer>`` (the episode ends; reward 1.0 on an exact match after SQuAD's
normalisation, else 0.0; token F1 in ``info["f1"]``). Anything else, or more than one block, is
an invalid action: the state does not change. Replies are free text: no admissible list, so
constrained decoding is off (configs/searchqa.yaml). Construction is cheap; data load at the
first ``tasks``/``reset`` and are shared by every env of the process with the same options.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from pawkit.cache import cache_subdir
from pawkit.protocol import Env, Observation, StepResult, Task, UsageError, check_split
from pawkit_adapters.searchqa.answers import exact_match, f1_score
from pawkit_adapters.searchqa.data import Passage, Question, load_corpus, load_questions, write_jsonl
from pawkit_adapters.searchqa.generate import VERSION, generate
from pawkit_adapters.searchqa.retriever import Retriever

ROLE = ("You are a question-answering agent with a search engine. To search, reply <search> query </search>: "
        "the best passages come back between <information> and </information>. Search as often as you need. "
        "When you know the answer, reply <answer> answer </answer> with the answer only, a few words, "
        "for example <answer> Beijing </answer>.")
INVALID = ("My previous action is invalid. If I want to search, I should put the query between <search> and "
           "</search>. If I want to give the final answer, I should put the answer between <answer> and </answer>. "
           "Let me try again.")
_BLOCK = re.compile(r"<(search|answer)>(.*?)</\1>", re.DOTALL | re.IGNORECASE)
_FILES = ("corpus.jsonl", "train.jsonl", "test.jsonl")


def parse_reply(reply: str) -> tuple[str, str] | str:
    """``("search"|"answer", content)`` for a reply with exactly one non-empty block, else the
    reason it is invalid (a str). Text around the block (a ``<think>``) is allowed."""
    blocks = _BLOCK.findall(reply)
    if not blocks:
        return "no <search>…</search> or <answer>…</answer> block"
    if len(blocks) > 1:
        return f"{len(blocks)} blocks; reply with exactly one"
    kind, content = blocks[0][0].lower(), " ".join(blocks[0][1].split())
    return (kind, content) if content else f"empty <{kind}> block"


def information(passages: Sequence[Passage]) -> str:
    """Search-R1's ``_passages2string`` inside ``<information>`` tags."""
    if not passages:
        return "<information>No passage matches the query.</information>"
    docs = "".join(f"Doc {i + 1}(Title: {p.title}) {p.text}\n" for i, p in enumerate(passages))
    return f"<information>{docs}</information>"


@dataclass
class _Data:
    passages: list[Passage]
    retriever: Retriever
    splits: dict[str, list[Question]]


_LOADED: dict[tuple, _Data] = {}


def default_files(seed: int) -> tuple[Path, Path, Path]:
    """The generated data's corpus/train/test JSONL under ``$PAWKIT_CACHE/searchqa/``, written now
    if absent (about 0.2 s)."""
    folder = cache_subdir(f"searchqa/generated-v{VERSION}-s{seed}")
    paths = tuple(folder / name for name in _FILES)
    if not all(p.is_file() for p in paths):
        docs, questions = generate(seed)
        write_jsonl(paths[0], [{"id": d["id"], "title": d["title"], "text": d["text"]} for d in docs])
        write_jsonl(paths[1], questions["train"])
        write_jsonl(paths[2], questions["test"])
    return paths  # type: ignore[return-value]


class SearchQAEnv(Env):
    """Search-augmented QA with exact-match reward, over generated or Search-R1/FlashRAG data."""

    name = "searchqa"
    splits = ("train", "test")
    max_steps = 4
    role = ROLE

    def __init__(self, corpus: str | None = None, train: str | None = None, test: str | None = None,
                 top_k: int = 3, max_steps: int = 4, seed: int = 0) -> None:
        """``corpus``/``train``/``test``: JSONL or Parquet files (docs/searchqa.md); none = the generated
        default data of ``seed``. ``top_k``: passages per search; ``max_steps``: turn limit (Search-R1
        and verl-agent: 4). Raises ValueError for a bad number, UsageError for a bad file option."""
        if top_k < 1:
            raise ValueError(f"env.options.top_k must be >= 1, not {top_k}")
        if max_steps < 1:
            raise ValueError(f"env.options.max_steps must be >= 1, not {max_steps}")
        if corpus is None and (train or test):
            raise UsageError("env.options.train/test need env.options.corpus (the passages to search)")
        if corpus is not None and not (train or test):
            raise UsageError("env.options.corpus needs env.options.train and/or env.options.test (the questions)")
        self._where = (corpus, train, test, seed)
        self.top_k = top_k
        self.max_steps = max_steps
        self._question: Question | None = None
        self._turn = 0
        self._done = True
        self._hop = 0
        self._missed = False

    # --- data ------------------------------------------------------------------------------
    @property
    def data(self) -> _Data:
        if self._where not in _LOADED:
            corpus, train, test, seed = self._where
            if corpus is None:
                corpus, train, test = map(str, default_files(seed))
            passages = load_corpus(corpus)
            splits = {name: load_questions(path, name) for name, path in (("train", train), ("test", test)) if path}
            _LOADED[self._where] = _Data(passages, Retriever(passages, corpus), splits)
        return _LOADED[self._where]

    def questions(self, split: str) -> list[Question]:
        check_split(self, split)
        if split not in self.data.splits:
            raise UsageError(f"searchqa split {split!r} has no questions: set env.options.{split} to a file")
        return self.data.splits[split]

    def tasks(self, split: str = "train") -> Sequence[Task]:
        return [Task(id=f"{split}-{i}", split=split, seed=i, description=q.question, info={"index": i})
                for i, q in enumerate(self.questions(split))]

    # --- episode -----------------------------------------------------------------------------
    def reset(self, task: Task | None = None, seed: int | None = None) -> Observation:
        split = task.split if task is not None and task.split in self.splits else "train"
        pool = self.questions(split)
        if task is not None and "index" in task.info:
            index = int(task.info["index"])
        elif task is not None and task.seed is not None:
            index = task.seed
        else:
            index = random.Random(seed).randrange(len(pool))
        if not 0 <= index < len(pool):
            raise ValueError(f"searchqa {split} question {index} out of range; there are {len(pool)}")
        self._question = pool[index]
        self._turn, self._done, self._hop, self._missed = 0, False, 0, False
        info: dict[str, Any] = {"min_steps": len(self._question.hops) + 1} if self._question.hops else {}
        return self._observe(f"Question: {self._question.question}", info)

    def step(self, command: str) -> StepResult:
        q = self._question
        if self._done or q is None:
            raise RuntimeError("searchqa: the episode is over; call reset() first")
        self._turn += 1
        parsed = parse_reply(command)
        info: dict[str, Any] = {"turn": self._turn, "invalid_action": isinstance(parsed, str), "em": 0.0, "f1": 0.0}
        reward, done, success = 0.0, False, False
        if isinstance(parsed, str):
            info["parse_error"] = parsed
            observation = self._observe(INVALID)
        elif parsed[0] == "search":
            hits = self.data.retriever.search(parsed[1], self.top_k)
            ids = [self.data.passages[h].id for h in hits]
            self._track_hops(ids)
            info["doc_ids"] = ids
            observation = self._observe(information([self.data.passages[h] for h in hits]), {"doc_ids": ids})
        else:
            answer = parsed[1]
            em, f1 = exact_match(answer, q.golden_answers), f1_score(answer, q.golden_answers)
            info.update(em=em, f1=f1, answer=answer, golden_answers=list(q.golden_answers), won=em == 1.0)
            reward, done, success = em, True, em == 1.0
            observation = self._observe(f"Your answer: {answer}")
        if not done and self._turn >= self.max_steps:
            done = True
            info["won"] = False
        self._done = done
        return StepResult(observation=observation, reward=reward, done=done, success=success, info=info)

    def _observe(self, text: str, info: dict[str, Any] | None = None) -> Observation:
        assert self._question is not None
        return Observation(text=text, task=f'answer the question "{self._question.question}"', info=info or {})

    def _track_hops(self, doc_ids: list[str]) -> None:
        """The expert "reads" a hop's passage when the search returned it (generated data only)."""
        hops = self._question.hops if self._question else ()
        if self._hop < len(hops):
            found = hops[self._hop]["doc"] in doc_ids
            self._hop += found
            self._missed = not found

    # --- policies ------------------------------------------------------------------------------
    def expert_action(self) -> str:
        """Search each hop's entity (the generator's query; after a miss, the gold passage's title),
        read the bridge from the passage it returns, and answer once every hop's passage was read
        (``unknown`` if the turns run out first). Generated data only: real files have no hops."""
        q = self._question
        if q is None or self._done:
            raise RuntimeError("searchqa: no episode in progress")
        if not q.hops:
            raise UsageError("searchqa's expert needs the generated data's hops; real data (env.options.corpus) has "
                             "none: use --policy random")
        if self._hop >= len(q.hops) or self.max_steps - self._turn <= 1:
            return f"<answer>{q.golden_answers[0] if self._hop >= len(q.hops) else 'unknown'}</answer>"
        hop = q.hops[self._hop]
        query = hop["query"]
        if self._missed:
            query = next((p.title for p in self.data.passages if p.id == hop["doc"]), query)
        return f"<search>{query}</search>"

    def random_action(self, observation: Observation, rng: random.Random) -> str:
        """A search for 1-3 words of the question, or an answer of 1-2 words of the observation (even odds)."""
        question = (self._question.question if self._question else observation.text).split()
        if rng.random() < 0.5:
            return f"<search>{' '.join(rng.sample(question, min(len(question), rng.randint(1, 3))))}</search>"
        words = re.findall(r"\w+", observation.text) or question
        start = rng.randrange(len(words))
        return f"<answer>{' '.join(words[start:start + rng.randint(1, 2)])}</answer>"
