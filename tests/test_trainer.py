"""The trainer on the tiny model and the built-in gridnav game (CPU, seconds per test)."""

import json

import pytest
import torch

from pawkit import plugins
from pawkit.rollout import numbered
from pawkit.train.batching import TrainingSequence, forward, micro_batches
from pawkit.train.checkpoint import complete_checkpoints
from pawkit.config import load_config
from pawkit.rollout.envpool import make_env_pool
from pawkit.train.evaluate import evaluate
from pawkit.train.models import load_model
from pawkit.rollout.generate import Generator
from pawkit.rollout.run import run_rollout
from pawkit.train.trainer import Trainer, train

TIMING = ("seconds", "tokens_per_second", "step_seconds", "peak_")  # measurements, not results


def small(tmp_path, *extra):
    return load_config(
        "gridnav",
        overrides=[
            f"trainer.output_dir={tmp_path}", "rollout.tasks_per_step=2", "rollout.group_size=4",
            "trainer.eval_every=0", "trainer.early_stop_success=null", *extra,
        ],
    )


def comparable(metrics):
    return {k: v for k, v in metrics.items() if not any(t in k for t in TIMING)}


def gridnav_rollout(overrides, tasks, group_size, temperature):
    """One constrained rollout of the tiny model on the first ``tasks`` gridnav train tasks."""
    cfg = load_config("gridnav", overrides=overrides)
    model, tokenizer = load_model(cfg.model)
    env = plugins.get("env", "gridnav")()
    torch.manual_seed(0)
    with make_env_pool("gridnav", {}, tasks * group_size) as pool:
        batch = run_rollout(
            env, pool, Generator(model, tokenizer, cfg.rollout), list(env.tasks("train"))[:tasks], group_size, cfg.rollout, temperature
        )
    return batch, tokenizer


def test_constrained_decoding_only_emits_admissible_actions():
    batch, tokenizer = gridnav_rollout(["rollout.max_new_tokens=12"], 8, 4, 1.5)
    steps = [t for e in batch.episodes for t in e.transitions]
    assert len(steps) >= 32
    for t in steps:
        assert t.action.valid and t.action.command in t.observation.admissible_actions
    for s in batch.samples:
        assert s.response_ids[-1] == tokenizer.eos_token_id
        assert all(tok in allowed for tok, allowed in zip(s.response_ids, s.allowed))


def test_constrained_numbered_rollout_replies_with_numbers_and_plays_admissible_actions():
    batch, tokenizer = gridnav_rollout(["rollout.numbered_actions=true"], 4, 4, 1.0)
    steps = [t for e in batch.episodes for t in e.transitions]
    assert len(steps) >= 16
    for t in steps:
        options = numbered.choices(t.observation.admissible_actions)
        assert t.action.valid and t.action.raw.strip() == str(options.index(t.action.command) + 1)
    for s in batch.samples:  # the trainer restricts log-probs to the same digit choices
        assert all(tok in allowed for tok, allowed in zip(s.response_ids, s.allowed))
        assert tokenizer.decode(s.response_ids, skip_special_tokens=True).strip().isdigit()


def test_group_members_share_the_initial_state():
    cfg = load_config("gridnav")
    model, tokenizer = load_model(cfg.model)
    env = plugins.get("env", "gridnav")()
    tasks = list(env.tasks("train"))[:3]
    with make_env_pool("gridnav", {}, 12) as pool:
        batch = run_rollout(env, pool, Generator(model, tokenizer, cfg.rollout), tasks, 4, cfg.rollout, 1.0)
    by_group = {}
    for e in batch.episodes:
        by_group.setdefault(e.group_id, set()).add(e.transitions[0].observation.text)
    assert len(by_group) == 3 and all(len(first) == 1 for first in by_group.values())


def test_resume_reproduces_the_next_step_exactly(tmp_path):
    straight = train(small(tmp_path / "a", "trainer.steps=2", "trainer.save_every=1"), show_progress=False)
    train(small(tmp_path / "b", "trainer.steps=1", "trainer.save_every=1"), show_progress=False)
    resumed = train(small(tmp_path / "b", "trainer.steps=2", "trainer.save_every=1"), resume=True, show_progress=False)
    assert len(resumed) == 1
    assert comparable(resumed[0]) == comparable(straight[1])
    lines = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1.0, 2.0]


def test_checkpoints_are_atomic_rotated_and_loadable_by_eval(tmp_path):
    train(small(tmp_path, "trainer.steps=3", "trainer.save_every=1", "trainer.keep_checkpoints=2"), show_progress=False)
    found = complete_checkpoints(tmp_path)
    assert [p.name for p in found] == ["step-000002", "step-000003"]
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))
    cfg = load_config("gridnav", overrides=[f"model.name={found[-1] / 'model'}"])
    result = evaluate(cfg, episodes=4, split="test")
    assert result["episodes"] == 4 and 0.0 <= result["success_rate"] <= 1.0


def test_half_written_checkpoint_is_ignored(tmp_path):
    train(small(tmp_path, "trainer.steps=1", "trainer.save_every=1"), show_progress=False)
    broken = tmp_path / "checkpoints" / "step-000009"
    broken.mkdir()
    (broken / "trainer_state.pt").write_bytes(b"partial")
    assert complete_checkpoints(tmp_path)[-1].name == "step-000001"
    resumed = train(small(tmp_path, "trainer.steps=2"), resume=True, show_progress=False)
    assert [m["step"] for m in resumed] == [2.0]


def test_lora_with_reference_from_disabled_adapter(tmp_path):
    cfg = small(tmp_path, "trainer.steps=1", "model.lora.enabled=true", "model.lora.r=4", "algorithm.kl_coef=0.01")
    trainer = Trainer(cfg)
    assert trainer.reference is None and trainer.uses_lora
    metrics = trainer.train_step()
    assert metrics["loss/kl"] == pytest.approx(0.0, abs=1e-6)  # first step: policy == reference
    path = trainer.save()
    trainer.close()
    assert (path / "model" / "adapter_config.json").exists()
    result = evaluate(load_config("gridnav", overrides=[f"model.name={path / 'model'}"]), episodes=2, split="test")
    assert result["episodes"] == 2


def test_wm_tokens_leave_action_logprobs_unchanged():
    cfg = load_config("gridnav")
    model, tokenizer = load_model(cfg.model)
    seqs = [
        TrainingSequence(tokenizer("go to")["input_ids"], tokenizer("north")["input_ids"] + [tokenizer.eos_token_id],
                 tokenizer("\nNext observation:\nThe goal is 1 step east of you.")["input_ids"]),
        TrainingSequence(tokenizer("a longer prompt here")["input_ids"], tokenizer("west")["input_ids"], []),
    ]
    with torch.no_grad():
        outs = {}
        for with_wm in (True, False):
            (mb,) = micro_batches(seqs, 10_000, tokenizer.pad_token_id, len(tokenizer), with_wm=with_wm)
            out = forward(model, mb)
            outs[with_wm] = {i: out.logprobs[b][mb.action_mask[b]] for b, i in enumerate(mb.index.tolist())}
    for i in range(2):
        assert torch.allclose(outs[True][i], outs[False][i], atol=1e-6)


def test_early_stop_waits_for_an_eval_when_evals_run(tmp_path):
    # A threshold of 0 is met by any success rate: with evals every 2 steps the run must still
    # reach step 2 (the first eval), not stop on step 1's training batch.
    history = train(small(tmp_path / "a", "trainer.steps=4", "trainer.early_stop_success=0", "trainer.eval_every=2",
                          "trainer.eval_episodes=2"), show_progress=False)
    assert [m["step"] for m in history] == [1.0, 2.0] and "eval/success_rate" in history[-1]
    history = train(small(tmp_path / "b", "trainer.steps=4", "trainer.early_stop_success=0"), show_progress=False)
    assert [m["step"] for m in history] == [1.0]
