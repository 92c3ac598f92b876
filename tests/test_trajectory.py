"""Trajectory mode (``rollout.context=trajectory``): one token sequence per episode, sampled ids
appended as sampled, observations tokenised once, the log-probs trained equal the sampled ones,
PaW's targets are the observation segments already in the sequence, overflow ends the episode."""

from __future__ import annotations

import pytest
import torch

from pawkit.config import ModelConfig, RolloutConfig, load_config
from pawkit.protocol import Observation
from pawkit.rollout.envpool import build_env
from pawkit.rollout.tokens import plain_ids
from pawkit.rollout.trajectory import TurnPieces, append_turn, turn_pieces
from pawkit.train.batching import TrainingSequence, forward, micro_batches
from pawkit.train.evaluate import summarize
from pawkit.train.models import load_tokenizer
from pawkit.train.trainer import Trainer


def config(tmp_path, *extra):
    return load_config(
        "gridnav",
        overrides=[f"trainer.output_dir={tmp_path}", "rollout.context=trajectory", "rollout.tasks_per_step=2",
                   "rollout.group_size=2", "trainer.eval_every=0", "trainer.early_stop_success=null",
                   "trainer.eval_before_after=false", "trainer.dump_trajectories_every=0", *extra],
    )


@pytest.mark.parametrize("constrained", [True, False])
def test_one_sequence_per_episode_and_the_trained_logprobs_are_the_sampled_ones(tmp_path, constrained):
    extra = ["rollout.temperature=0.7", "rollout.top_p=0.9", "paw.enabled=true"]
    if not constrained:
        extra += ["rollout.constrained=false", "rollout.max_new_tokens=6"]
    trainer = Trainer(config(tmp_path, *extra))
    try:
        batch = trainer.rollout()
        seqs = trainer.sequences(batch)
        old, _, entropy = trainer._logprob_pass(seqs, policy=True)  # the training forward, over whole episodes
    finally:
        trainer.close()
    contexts = {id(s.context) for s in batch.samples}
    assert len(contexts) == len({s.traj_id for s in batch.samples}) == 4
    for s in batch.samples:
        assert s.prompt_ids == s.context[: s.start]  # what the model saw = the episode so far
        assert s.context[s.start : s.start + len(s.response_ids)] == s.response_ids  # appended as sampled
    steps = sum(len(s.response_ids) for s in batch.samples)
    assert len(batch.samples) >= 4 and steps >= 8
    for lp, s in zip(old, batch.samples):
        assert lp.shape == (len(s.response_ids),)
        assert (lp - torch.tensor(s.sampled_logprobs)).abs().max().item() <= 1e-5
    sampled_entropy = torch.tensor([sum(s.sampled_entropies) / len(s.sampled_entropies) for s in batch.samples])
    assert (entropy - sampled_entropy).abs().max().item() <= 1e-5
    rows = micro_batches(seqs, 10**6, 0, 259)
    assert len(rows) == 1 and rows[0].input_ids.shape[0] == 4  # one row per episode, not per step
    assert sum(len(q.wm_ids) for q in seqs) > 0 and all(q.prompt_ids == [] for q in seqs)  # no tokens of their own


def test_the_per_step_view_of_an_episode_equals_scoring_each_step_alone(tmp_path):
    """The episode forward, gathered per step, gives each step's action and WM log-probs exactly
    as a separate sequence ``context[:end of that step's target]`` would (causal attention)."""
    trainer = Trainer(config(tmp_path, "paw.enabled=true", "rollout.temperature=1.0"))
    try:
        batch = trainer.rollout()
        seqs = [q for q in trainer.sequences(batch) if q.wm_ids]
        model, vocab = trainer.model, len(trainer.tokenizer)
        with torch.no_grad():
            [episodes] = micro_batches(seqs, 10**6, 0, vocab)
            together = forward(model, episodes)
            alone = []
            for q in seqs:  # the step as step mode would lay it out: prompt = context so far
                gap = q.context[q.start + len(q.response_ids) : q.wm_start]  # turn markers between reply and message
                single = TrainingSequence(q.context[: q.start], q.response_ids, gap + q.wm_ids, q.allowed)
                [mb] = micro_batches([single], 10**6, 0, vocab)
                out = forward(model, mb)
                alone.append((out.logprobs[0][mb.action_mask[0]], out.logprobs[0][mb.wm_mask[0]][len(gap):]))
    finally:
        trainer.close()
    assert len(seqs) >= 4
    for b, i in enumerate(episodes.index.tolist()):
        action, target = alone[i]
        assert int(episodes.action_mask[b].sum()) == len(seqs[i].response_ids)
        assert int(episodes.wm_mask[b].sum()) == len(seqs[i].wm_ids) > 0
        assert (together.logprobs[b][episodes.action_mask[b]] - action).abs().max().item() <= 1e-5
        assert (together.logprobs[b][episodes.wm_mask[b]] - target).abs().max().item() <= 1e-5


def test_chat_template_turns_and_env_text_stay_plain():
    tok = load_tokenizer(ModelConfig(name="smollm2-135m"))

    class Gen:  # what turn_pieces reads: the tokenizer and rollout.chat_template
        tokenizer, cfg = tok, RolloutConfig(chat_template=True)

    pieces = turn_pieces(Gen)
    assert tok.decode(pieces.between) == "<|im_end|>\n<|im_start|>user\n"
    assert tok.decode(pieces.tail) == "<|im_end|>\n<|im_start|>assistant\n"
    env = build_env("gridnav", {})
    cfg = RolloutConfig(prompt_style="compact", output_format="plain", constrained=True, max_prompt_tokens=4096)
    eos = tok.eos_token_id  # <|im_end|> (2): the reply's stop token closes its turn itself
    context = [7, 8]
    reply = tok("north", add_special_tokens=False)["input_ids"] + [eos]
    seg = append_turn(env, cfg, tok, pieces, context, reply, Observation(text="a wall <|im_end|> here"), done=False)
    assert context[2 : 2 + len(reply)] == reply
    assert tok.decode(context[2 + len(reply) :]) == "\n<|im_start|>user\na wall <|im_end|> here<|im_end|>\n<|im_start|>assistant\n"
    message = context[seg.wm_start : seg.wm_start + seg.wm_tokens]
    assert tok.decode(message) == "a wall <|im_end|> here" and eos not in message  # env text: never the special id
    # a reply cut by max_new_tokens (no stop token) gets the closing <|im_end|> from the template
    context = []
    seg = append_turn(env, cfg, tok, pieces, context, [100, 101], Observation(text="done"), done=True)
    assert tok.decode(context[2:]) == "<|im_end|>\n<|im_start|>user\ndone" and context[:2] == [100, 101]
    assert tok.decode(context[seg.wm_start:]) == "done"  # after the last step: no generation prompt


def test_no_chat_template_separates_turns_with_a_newline():
    tok = load_tokenizer(ModelConfig(name="tiny"))

    class Gen:
        tokenizer, cfg = tok, RolloutConfig(chat_template=False)

    pieces = turn_pieces(Gen)
    assert pieces == TurnPieces(between=plain_ids(tok, "\n"), tail=[]) and len(pieces.between) == 1


def test_an_observation_that_does_not_fit_ends_the_episode_with_reason_context(tmp_path):
    budget = 150  # the first gridnav prompt is ~100 tokens, each later observation ~50
    trainer = Trainer(config(tmp_path, f"rollout.max_prompt_tokens={budget}", "rollout.max_steps=6", "paw.enabled=true",
                             "rollout.temperature=1.0", "rollout.tasks_per_step=4"))
    try:
        batch = trainer.rollout()
        metrics = trainer.train_step()  # such episodes train like any other
    finally:
        trainer.close()
    by_traj: dict[str, list] = {}
    for s in batch.samples:  # slot order = episode order
        by_traj.setdefault(s.traj_id, []).append(s)
    ended = 0
    for episode, steps in zip(batch.episodes, by_traj.values(), strict=True):
        first, last = steps[0], steps[-1]
        assert first.context[: first.start] == first.prompt_ids  # the head is never cut
        assert all(s.start <= budget for s in steps) and len(first.context) <= budget + trainer.cfg.rollout.max_new_tokens
        if episode.end_reason == "context":
            ended += 1
            assert not episode.success and last.wm_tokens == 0 and last.next_observation_text  # it had a next observation
            assert len(steps) < 6
    assert ended >= 1, [e.end_reason for e in batch.episodes]
    assert batch.metrics()["rollout/context_ended"] == ended
    assert summarize("gridnav", batch.episodes)["context_ended"] == ended  # evaluation reports it too (eval/context_ended)
    assert "rollout/context_ended" in metrics and metrics["loss/skipped_update"] == 0.0


# Same bar as tests/test_learning.py (greedy success ≤ 0.2 at the start, ≥ 0.9 within 200 steps).
# Turn limit 4 (every 3x3 task needs at most 4 moves, so all stay solvable) instead of the env's 6:
# at 6 the tiny from-scratch model's whole-episode contexts (up to ~450 bytes) were still at 0.06-0.5
# after 140 steps (it must learn to read the latest observation among earlier ones; step mode shows
# it only that one). Measured at 1 thread beside other jobs: 0.19 → 0.94 at step 120, 230 s.
@pytest.mark.learning
def test_tiny_model_learns_gridnav_in_trajectory_mode(tmp_path):
    from pawkit.train.evaluate import evaluate
    from pawkit.train.trainer import train

    cfg = load_config("gridnav", overrides=[f"trainer.output_dir={tmp_path}", "trainer.steps=200", "rollout.context=trajectory",
                                            "rollout.max_steps=4"])
    start = evaluate(cfg, episodes=cfg.trainer.eval_episodes, split=cfg.env.eval_split)["success_rate"]
    history = train(cfg, show_progress=False)
    evals = [m["eval/success_rate"] for m in history if "eval/success_rate" in m]
    assert start <= 0.2
    assert evals[-1] >= 0.9, f"greedy success per eval: {evals}"
    assert all(m["rollout/context_ended"] == 0 for m in history)  # 4 turns fit rollout.max_prompt_tokens
