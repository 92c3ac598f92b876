"""Evaluation: success, return, invalid-action rate and steps on a split, plus PaW's WM accuracy.

WM accuracy on held-out transitions = how well the model predicts the next observation
(argmax == target over the observation tokens) on the episodes it just played.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch

from pawkit import plugins
from pawkit.config import Config
from pawkit.protocol import Env, Episode, check_split
from pawkit.rollout.envpool import make_env_pool
from pawkit.rollout.generate import Generator
from pawkit.rollout.play import Summary
from pawkit.rollout.run import run_rollout
from pawkit.rollout.samples import RolloutBatch, StepSample
from pawkit.train.batching import forward, micro_batches
from pawkit.train.models import load_model
from pawkit.train.paw import training_sequence


def play_split(env: Env, pool, generator: Generator, config: Config, episodes: int, split: str, slots: int) -> RolloutBatch:
    """``episodes`` episodes over the first tasks of ``split`` (cycled), ``slots`` at a time."""
    tasks = list(env.tasks(split))
    chosen = [tasks[i % len(tasks)] for i in range(episodes)]
    merged = RolloutBatch(episodes=[], samples=[])
    for start in range(0, len(chosen), slots):
        part = run_rollout(env, pool, generator, chosen[start : start + slots], 1, config.rollout, config.rollout.eval_temperature)
        merged.episodes += part.episodes
        merged.samples += part.samples
        merged.env_errors += part.env_errors
        merged.env_error_messages += part.env_error_messages
    return merged


@torch.no_grad()
def wm_accuracy(model, tokenizer, samples: list[StepSample], config: Config) -> dict[str, float]:
    seqs = [training_sequence(tokenizer, s, config.paw) for s in samples]
    seqs = [s for s in seqs if s.wm_ids]
    correct = tokens = 0.0
    prob = 0.0
    for mb in micro_batches(seqs, config.trainer.micro_batch_tokens, tokenizer.pad_token_id, len(tokenizer)):
        out = forward(model, mb)
        mask = mb.wm_mask.to(out.logprobs.device)
        correct += out.wm_correct[mask].sum().item()
        prob += out.logprobs[mask].exp().sum().item()
        tokens += mask.sum().item()
    return {"wm_token_accuracy": correct / max(tokens, 1), "wm_target_prob": prob / max(tokens, 1), "wm_tokens": tokens}


def summarize(env_name: str, episodes: list[Episode]) -> dict[str, Any]:
    kept = [e for e in episodes if e.end_reason != "env_error"]
    result = asdict(Summary.of(env_name, kept))
    result["env_errors"] = len(episodes) - len(kept)
    return result


def evaluate(config: Config, episodes: int, split: str | None = None, show_progress: bool = False) -> dict[str, Any]:
    model, tokenizer = load_model(config.model)
    model.eval()
    env = plugins.get("env", config.env.name)(**config.env.options)
    split = split or config.env.eval_split
    check_split(env, split)
    slots = min(episodes, config.rollout.tasks_per_step * config.rollout.group_size)
    with make_env_pool(config.env.name, config.env.options, slots, config.rollout.num_workers, config.rollout.step_timeout) as pool:
        batch = play_split(env, pool, Generator(model, tokenizer, config.rollout), config, episodes, split, slots)
    env.close()
    result = summarize(config.env.name, batch.episodes)
    result.update(wm_accuracy(model, tokenizer, batch.samples, config))
    result["split"] = split
    return result
