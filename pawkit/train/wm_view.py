"""What the world model believes about dumped transitions: the data behind `pawkit view`'s WM panel.

For each transition with a next observation, one no-grad pass of the training forward
(``pawkit.train.batching.forward`` over ``pawkit.train.paw.training_sequence``: the target is
the real ``paw.delimiter + o_{t+1}``, whatever ``paw.targets`` trained on) gives every target
token's probability p (temperature 1, full vocabulary) and whether the argmax was it; a greedy
``generate`` from the same prefix (prompt + reply in step mode, the episode's context up to the
observation in trajectory mode), as long as the target, gives the model's own prediction.

Cost: at each ``trainer.dump_trajectories_every`` step, one extra no-grad forward over the
dumped step's transitions plus a greedy generation of ≤ ``paw.max_obs_tokens`` tokens per
transition (tiny model, 8 transitions: ~0.1 s on CPU). Written to
``trajectories/step-N.view.jsonl`` next to ``step-N.jsonl``, one line per episode in the same order.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from pawkit.config import Config
from pawkit.protocol import Env, Episode, Observation, StepResult, Task
from pawkit.rollout.generate import Generator
from pawkit.rollout.run import Slot, grow_context, next_prompt
from pawkit.rollout.samples import RolloutBatch, StepSample
from pawkit.rollout.tokens import plain_ids
from pawkit.rollout.trajectory import turn_pieces
from pawkit.train.batching import TrainingSequence, forward, micro_batches
from pawkit.train.paw import ACTIVITY_EPSILON, training_sequence
from pawkit.train.rows import group_rows


@torch.no_grad()
def score_sequences(model, tokenizer, seqs: Sequence[TrainingSequence], budget_tokens: int, predict: bool = True) -> list[dict | None]:
    """Per sequence with WM ids: ``{"tokens": [str], "p": [float 0–1], "correct": [bool],
    "predicted": str}`` (tokens decoded one by one); None for a sequence without a target."""
    out: list[dict | None] = [None] * len(seqs)
    todo = [i for i, s in enumerate(seqs) if s.wm_ids]
    if not todo:
        return out
    was_training = model.training
    model.eval()
    try:
        picked = [seqs[i] for i in todo]
        for mb in micro_batches(picked, budget_tokens, tokenizer.pad_token_id, len(tokenizer)):
            res = forward(model, mb)
            for row, j in enumerate(mb.index.tolist()):
                mask = mb.wm_mask[row].to(res.logprobs.device)
                seq = picked[j]
                out[todo[j]] = {
                    "tokens": [tokenizer.decode([t]) for t in seq.wm_ids],
                    "p": [round(float(v), 6) for v in res.logprobs[row][mask].exp().tolist()],
                    "correct": [bool(v) for v in res.wm_correct[row][mask].tolist()],
                }
        if predict:
            for i, text in zip(todo, _greedy([seqs[i] for i in todo], model, tokenizer)):
                out[i]["predicted"] = text
    finally:
        model.train(was_training)
    return out


def _greedy(seqs: list[TrainingSequence], model, tokenizer, rows: int = 8) -> list[str]:
    """The model's greedy continuation of each prefix, ``len(wm_ids)`` tokens at most."""
    device = next(model.parameters()).device
    texts: list[str] = []
    for start in range(0, len(seqs), rows):
        chunk = seqs[start : start + rows]
        prefixes = [s.context[: s.wm_start] if s.context is not None else s.prompt_ids + s.response_ids for s in chunk]
        width = max(map(len, prefixes))
        ids = torch.full((len(chunk), width), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for b, p in enumerate(prefixes):  # left padding: every row continues at the same column
            ids[b, width - len(p):] = torch.tensor(p)
            mask[b, width - len(p):] = 1
        gen = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), do_sample=False,
                             max_new_tokens=max(len(s.wm_ids) for s in chunk), pad_token_id=tokenizer.pad_token_id)
        for b, s in enumerate(chunk):
            texts.append(tokenizer.decode(gen[b, width : width + len(s.wm_ids)].tolist(), skip_special_tokens=True))
    return texts


def episode_samples(episodes: Sequence[Episode], samples: Sequence[StepSample]) -> list[list[StepSample | None]]:
    """Each episode's samples, transition by transition (a rollout appends the samples of its
    episodes in order, none for an env-error episode); None where they cannot be matched."""
    out, k = [], 0
    for e in episodes:
        n = len(e.transitions)
        mine = list(samples[k : k + n]) if e.end_reason != "env_error" else []
        if len(mine) == n and all(s.group_id == e.group_id and s.step_index == t for t, s in enumerate(mine)):
            out.append(mine)
            k += n
        else:
            out.append([None] * n)
    return out


def step_views(trainer) -> list[dict[str, Any]]:
    """The view of ``trainer.last_batch``'s episodes (one dict per episode: ``transitions``, each
    with ``advantage``, ``entropy`` (nats), ``selected`` / ``lambda`` (PaW) and ``wm``), from the
    step's ``trainer.last_learned`` (set by ``Trainer.learn``) and one scoring pass."""
    cfg: Config = trainer.cfg
    batch = trainer.last_batch
    per_episode = episode_samples(batch.episodes, batch.samples)
    learned = getattr(trainer, "last_learned", None)
    facts: dict[int, dict] = {}
    if learned is not None:
        lbatch, advantages, entropy, plan = learned
        index = group_rows(lbatch)[1] if plan is not None else None
        for i, s in enumerate(lbatch.samples):
            row = {"advantage": float(advantages[i]), "entropy": float(entropy[i]) if len(entropy) > i else None}
            if plan is not None:
                row.update(selected=bool(plan.selected[i]), **{"lambda": float(plan.group_lambdas[index[i]])})
            facts[id(s)] = row
    flat = [s for ep in per_episode for s in ep if s is not None]
    seqs = [training_sequence(trainer.tokenizer, s, cfg.paw) for s in flat]
    scored = dict(zip(map(id, flat), score_sequences(trainer.model, trainer.tokenizer, seqs, cfg.trainer.micro_batch_tokens)))
    return [{"transitions": [{**facts.get(id(s), {}), "wm": scored.get(id(s))} if s is not None else {} for s in ep]}
            for ep in per_episode]


def view_meta(config: Config) -> dict[str, float]:
    """The clipped-MAE thresholds the WM panel colours by: ρ (``paw.rho``) and ε (``ACTIVITY_EPSILON``)."""
    return {"rho": config.paw.rho, "eps": ACTIVITY_EPSILON}


def replay_samples(env: Env, tokenizer, config: Config, episode: Episode) -> list[StepSample]:
    """A dumped episode's samples rebuilt by the rollout's own code (prompt, context, targets as
    ``config`` makes them); the reply is re-tokenised from its raw text, plus eos."""
    cfg = config.rollout
    generator = Generator(None, tokenizer, cfg)  # encode and template only
    slot = Slot(index=0, group_id=episode.group_id, task=Task(id=episode.task_id), traj_id="view",
                episode=Episode(env=episode.env, task_id=episode.task_id, group_id=episode.group_id))
    if not episode.transitions:
        return []
    slot.start(episode.transitions[0].observation, len(episode.transitions), RolloutBatch(episodes=[], samples=[]))
    pieces = turn_pieces(generator) if cfg.context == "trajectory" else None
    for step, t in enumerate(episode.transitions):
        slot.observation = t.observation
        prompt_ids, _, _ = next_prompt(env, generator, cfg, slot)
        response = plain_ids(tokenizer, t.action.raw) + [tokenizer.eos_token_id]
        result = StepResult(observation=t.next_observation or Observation(text=""), reward=t.reward, done=t.done, info=t.info)
        slot.record(env, step, prompt_ids, response, None, t.action, result)
        if pieces is not None:
            grow_context(env, cfg, generator, pieces, slot, result, more_turns=step + 1 < len(episode.transitions))
        slot.status = "running"  # the dump is the truth about when the episode ended
    return slot.samples


def rescore_episodes(model, tokenizer, env: Env, config: Config, episodes: Sequence[Episode]) -> list[dict[str, Any]]:
    """``step_views``'s ``wm`` entries for dumped ``episodes``, computed by ``model`` (any checkpoint)."""
    samples = [replay_samples(env, tokenizer, config, e) for e in episodes]
    flat = [s for ep in samples for s in ep]
    seqs = [training_sequence(tokenizer, s, config.paw) for s in flat]
    scored = iter(score_sequences(model, tokenizer, seqs, config.trainer.micro_batch_tokens))
    return [{"transitions": [{"wm": next(scored)} for _ in ep]} for ep in samples]
