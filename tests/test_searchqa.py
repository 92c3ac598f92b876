"""The search-augmented QA env (issue #23): Search-R1's protocol, EM reward, BM25 retrieval over
the generated world or Search-R1/FlashRAG files, the expert, and a tiny training run."""

from __future__ import annotations

import json

import pytest

from pawkit import cli
from pawkit.protocol import Task, UsageError
from pawkit.rollout.envpool import build_env
from pawkit.rollout.play import expert_policy, play_episode
from pawkit_adapters.searchqa.answers import exact_match, f1_score, normalize_answer
from pawkit_adapters.searchqa.env import parse_reply


@pytest.mark.parametrize("text, normal", [
    ("The  Eiffel-Tower!", "eiffeltower"),  # articles, punctuation (a hyphen too) and spaces go
    ("An apple a day", "apple day"),
    ("  Paris,   France. ", "paris france"),
    ("THE the The", ""),
    ("1,000", "1000"),
])
def test_answer_normalisation(text, normal):
    assert normalize_answer(text) == normal


def test_exact_match_and_f1_over_several_golden_answers():
    golden = ["Barack Obama", "Obama"]
    assert exact_match("obama.", golden) == 1.0 and exact_match("Michelle Obama", golden) == 0.0
    assert f1_score("Michelle Obama", golden) == pytest.approx(2 / 3)  # vs "Obama": P 1/2, R 1 → F1 2/3 (best answer)
    assert parse_reply("<think>hm</think><search> who </search>") == ("search", "who")
    assert parse_reply("<answer>x</answer>") == ("answer", "x")
    assert isinstance(parse_reply("no tags"), str) and isinstance(parse_reply("<search></search>"), str)


def test_gold_passage_is_in_the_top_3_for_one_hop_questions():
    env = build_env("searchqa", {})
    one_hop = [q for q in env.questions("test") if len(q.hops) == 1]
    found = sum(q.hops[0]["doc"] in [env.data.passages[i].id for i in env.data.retriever.search(q.question, 3)]
                for q in one_hop)
    assert len(one_hop) >= 100 and found / len(one_hop) >= 0.9, (found, len(one_hop))


def test_expert_solves_the_default_test_split():
    env = build_env("searchqa", {})
    tasks = list(env.tasks("test"))[:: max(1, len(env.tasks("test")) // 60)][:60]
    episodes = [play_episode(env, expert_policy, task, task.seed, env.max_steps) for task in tasks]
    success = sum(e.success for e in episodes) / len(episodes)
    assert success >= 0.95 and all(e.end_reason == "done" for e in episodes)


def test_play_command_json(capsys):
    assert cli.main(["play", "--env", "searchqa", "--policy", "expert", "--episodes", "20", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["episodes"] == 20 and summary["success_rate"] >= 0.95


def real_format_folder(tmp_path):
    """Search-R1's corpus layout ({"id","contents"}: title line + text) and FlashRAG's
    ({"id","title","text"}), questions with extra keys and several golden answers."""
    (tmp_path / "corpus.jsonl").write_text("\n".join(json.dumps(r) for r in [
        {"id": "1", "contents": '"Zorvan"\nZorvan is the capital of Quelland.'},
        {"id": "2", "title": "Quelland", "text": "Quelland is a country whose capital is Zorvan.", "url": "x"},
        {"id": "3", "contents": '"Mirek"\nMirek is a river in the north.'},
    ]) + "\n")
    (tmp_path / "train.jsonl").write_text(json.dumps({"id": "q1", "question": "What is the capital of Quelland?",
                                                      "golden_answers": ["Zorvan", "Zorvan City"], "data_source": "nq"}) + "\n")
    (tmp_path / "test.jsonl").write_text(json.dumps({"question": "Which river is in the north?", "golden_answers": "Mirek",
                                                     "metadata": {"k": 1}}) + "\n")
    return {"corpus": str(tmp_path / "corpus.jsonl"), "train": str(tmp_path / "train.jsonl"), "test": str(tmp_path / "test.jsonl")}


def test_a_real_format_folder_loads_and_plays(tmp_path):
    env = build_env("searchqa", real_format_folder(tmp_path))
    [q] = env.questions("train")
    assert q.golden_answers == ("Zorvan", "Zorvan City") and q.extra.get("data_source") == "nq"
    assert env.questions("test")[0].golden_answers == ("Mirek",)
    obs = env.reset(Task(id="train-0", split="train", seed=0, info={"index": 0}))
    assert "capital of Quelland" in obs.text
    searched = env.step("<search>capital of Quelland</search>")
    assert not searched.done and "Zorvan" in searched.observation.text and searched.info["doc_ids"][:2] in (["1", "2"], ["2", "1"])
    answered = env.step("<answer>zorvan city</answer>")  # an alias of the golden answers
    assert answered.done and answered.success and answered.reward == 1.0 and answered.info["em"] == 1.0
    invalid = env.reset(Task(id="train-0", split="train", seed=0, info={"index": 0}))
    assert invalid and env.step("I think it is Zorvan").info["invalid_action"]


def test_parquet_without_pyarrow_and_missing_files_are_one_line(tmp_path):
    options = real_format_folder(tmp_path)
    with pytest.raises(UsageError, match="env.options.train: .* is not a file"):
        build_env("searchqa", {**options, "train": str(tmp_path / "nope.jsonl")}).questions("train")
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        (tmp_path / "t.parquet").write_bytes(b"PAR1")
        with pytest.raises(UsageError, match=r"reading t.parquet needs pyarrow \(pip install pyarrow\)"):
            build_env("searchqa", {**options, "train": str(tmp_path / "t.parquet")}).questions("train")


def test_two_step_tiny_model_train_run(tmp_path):
    code = cli.main(["train", "--env", "searchqa", "--quiet", "model.name=tiny", "model.lora.enabled=false",
                     "rollout.max_new_tokens=16", "trainer.eval_before_after=false", "trainer.steps=2",
                     f"trainer.output_dir={tmp_path}"])
    assert code == 0
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [int(r["step"]) for r in rows] == [1, 2] and all(r["rollout/episodes"] == 4 for r in rows)
