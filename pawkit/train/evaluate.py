"""Evaluation: success, return, invalid-action rate and steps on a split, plus PaW's WM accuracy.

WM accuracy on held-out transitions = how well the model predicts the next observation
(argmax == target over the observation tokens) on the episodes it just played.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from typing import Any

import torch

from pawkit.config import Config
from pawkit.protocol import Env, Episode, UsageError, check_split
from pawkit.rollout.envpool import make_env_pool
from pawkit.rollout.engines import build_engine, check_engine, close_engine
from pawkit.rollout.generate import Generator
from pawkit.rollout.play import Summary
from pawkit.rollout.run import run_rollout
from pawkit.rollout.samples import RolloutBatch, StepSample
from pawkit.train.batching import forward, micro_batches
from pawkit.train.intervals import mean_interval, paired_difference, wilson_interval
from pawkit.train.models import load_model
from pawkit.train.paw import training_sequence


class EpisodeProgress:
    """Episodes done / total on stderr: a rich bar on a terminal (``mode="auto"``), else a plain
    line every ~10 % (``"lines"``; also what the trainer's evals print, above its own bar, which
    redirects stderr); ``"off"`` prints nothing."""

    def __init__(self, label: str, total: int, mode: str = "auto"):
        self.label, self.total, self.done, self.printed = label, total, 0, 0
        self.every = max(1, -(-total // 10))
        self.bar = None
        self.mode = mode
        if mode == "auto" and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(
                TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                console=Console(stderr=True), transient=True,
            )
            self.bar.start()
            self.task = self.bar.add_task(label, total=total)

    def update(self, done: int) -> None:
        done = min(done, self.total)
        if done <= self.done:
            return
        self.done = done
        if self.bar is not None:
            self.bar.update(self.task, completed=done)
        elif self.mode != "off" and (done - self.printed >= self.every or done == self.total):
            print(f"{self.label}: {done}/{self.total} episodes", file=sys.stderr, flush=True)
            self.printed = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


class _CountingPool:
    """The env pool, counting episodes that end (done or an env error) as they end."""

    def __init__(self, pool, on_end):
        self.pool, self.on_end = pool, on_end

    def step(self, requests):
        results = self.pool.step(requests)
        self.on_end(sum(1 for r in results if isinstance(r, BaseException) or getattr(r, "done", False)))
        return results

    def __getattr__(self, name):
        return getattr(self.pool, name)



class EvaluationFailed(RuntimeError):
    """No evaluation episode survived (every one hit an env error): there is no number to report."""


def eval_slots(config: Config, episodes: int) -> int:
    """Episodes an evaluation of ``episodes`` plays at once: ``trainer.eval_batch_episodes``, else
    one training step's ``tasks_per_step × group_size``; never more than ``episodes``."""
    width = config.trainer.eval_batch_episodes or config.rollout.tasks_per_step * config.rollout.group_size
    return max(1, min(episodes, width))


def play_split(
    env: Env, pool, generator: Generator, config: Config, episodes: int, split: str, slots: int, progress: str = "lines",
    samples: int = 1, temperature: float | None = None,
) -> RolloutBatch:
    """``episodes`` tasks, the first ones of ``split`` (cycled), each played ``samples`` times,
    ``slots`` episodes at a time (at least one task's ``samples``) at ``temperature`` (default
    ``rollout.eval_temperature``); ``progress``: see ``EpisodeProgress`` (the trainer's evals use
    the default, plain lines)."""
    tasks = list(env.tasks(split))
    chosen = [tasks[i % len(tasks)] for i in range(episodes)]
    temperature = config.rollout.eval_temperature if temperature is None else temperature
    per_chunk = max(1, slots // samples)  # tasks per generate batch
    merged = RolloutBatch(episodes=[], samples=[])
    label = f"eval {env.name} ({split})" if samples == 1 else f"sampled eval {env.name} ({split}, {samples} per task)"
    shown = EpisodeProgress(label, episodes * samples, progress)
    ended = [0]

    def on_end(n: int) -> None:
        ended[0] += n
        shown.update(ended[0])

    try:
        for start in range(0, len(chosen), per_chunk):
            ended[0] = start * samples
            chunk = chosen[start : start + per_chunk]
            part = run_rollout(env, _CountingPool(pool, on_end), generator, chunk, samples, config.rollout, temperature)
            shown.update((start + len(chunk)) * samples)  # episodes cut by the turn limit end here
            merged.episodes += part.episodes
            merged.samples += part.samples
            merged.env_errors += part.env_errors
            merged.engine_lost += part.engine_lost
            merged.env_error_messages += part.env_error_messages
    finally:
        shown.close()
    return merged


def pass_slots(config: Config) -> int:
    """Episodes the sampled (pass@k) evaluation plays at once: as ``eval_slots`` for its
    ``eval_pass_tasks × max(eval_pass_k)`` episodes, and at least one task's max(k) samples; 0
    when ``trainer.eval_pass_k`` is empty."""
    if not config.trainer.eval_pass_k:
        return 0
    n = max(config.trainer.eval_pass_k)
    return max(n, eval_slots(config, config.trainer.eval_pass_tasks * n))


def sampled_evaluation(env: Env, pool, generator: Generator, config: Config, split: str, progress: str = "lines",
                       ) -> tuple[dict[str, float], RolloutBatch]:
    """The pass@k evaluation of ``trainer.eval_pass_k``: each of the first ``eval_pass_tasks``
    tasks of ``split`` (all of them when the split has fewer: a task is never counted twice)
    played max(k) times at ``rollout.temperature`` (the training sampler). Returns
    ``sampled_summary``'s numbers (pawkit/train/pass_at_k.py) and the episodes played. When no
    task kept max(k) episodes (env errors) it warns on stderr, with the first error, and returns
    ``sampled_env_errors`` alone: the greedy numbers still stand."""
    from pawkit.train.pass_at_k import sampled_summary

    ks = config.trainer.eval_pass_k
    tasks = min(config.trainer.eval_pass_tasks, len(list(env.tasks(split))))
    batch = play_split(env, pool, generator, config, tasks, split, pass_slots(config),
                       progress, samples=max(ks), temperature=config.rollout.temperature)
    try:
        return sampled_summary(batch.episodes, ks), batch
    except ValueError as exc:
        first = batch.env_error_messages[0].splitlines()[0] if batch.env_error_messages else "none recorded"
        print(f"warning: no pass@k numbers: {exc}; the first env error: {first}", file=sys.stderr)
        return {"sampled_env_errors": float(sum(e.end_reason == "env_error" for e in batch.episodes))}, batch


def held_out_evaluation(trainer) -> tuple[dict[str, float], list[tuple[str, float]]]:
    """The trainer's evaluation (``Trainer.evaluate``): ``trainer.eval_episodes`` of
    ``env.eval_split`` at ``rollout.eval_temperature``, then the sampled (pass@k) evaluation when
    ``trainer.eval_pass_k`` is set, each inside ``rng_preserved`` so that training draws the same
    numbers as without them. Returns the ``eval/`` and ``perf/`` metrics and ``episode_returns``
    of the first part; env errors go to ``env_errors.log``."""
    from pawkit.train.runlog import append_lines
    from pawkit.train.state import rng_preserved

    c, progress = trainer.cfg, getattr(trainer, "eval_progress", "lines")  # "off": _train with show_progress=False
    slots = eval_slots(c, c.trainer.eval_episodes)
    t0 = time.perf_counter()
    with rng_preserved(trainer.state.cuda_devices):
        batch = play_split(trainer.env, trainer.pool, trainer.generator, c, c.trainer.eval_episodes, c.env.eval_split,
                           slots, progress=progress)
    seconds = time.perf_counter() - t0
    log = trainer.out / "env_errors.log"
    if batch.env_error_messages:
        append_lines(log, [f"eval after step {trainer.state.step}: {m}\n" for m in batch.env_error_messages])
    summary = summarize(c.env.name, batch.episodes)
    result = {f"eval/{k}": float(v) for k, v in summary.items() if isinstance(v, (int, float))}
    returns = episode_returns(batch.episodes)
    if c.trainer.eval_pass_k:  # sampled at the training temperature: pass@k, best-of-k return
        t0 = time.perf_counter()
        with rng_preserved(trainer.state.cuda_devices):
            sampled, batch = sampled_evaluation(trainer.env, trainer.pool, trainer.generator, c, c.env.eval_split, progress)
        if batch.env_error_messages:
            append_lines(log, [f"sampled eval after step {trainer.state.step}: {m}\n" for m in batch.env_error_messages])
        result.update({f"eval/{k}": float(v) for k, v in sampled.items()})
        result["perf/sampled_eval_seconds"] = time.perf_counter() - t0
    return {**result, "perf/eval_seconds": seconds}, returns  # neither is part of perf/step_seconds


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
    """``Summary`` of the episodes that did not hit an env error, with 95 % intervals: Wilson's
    for the success rate, Student's t for the mean return (pawkit/train/intervals.py)."""
    kept = [e for e in episodes if e.end_reason != "env_error"]
    result = asdict(Summary.of(env_name, kept))
    if kept:
        success = wilson_interval(sum(e.success for e in kept), len(kept))
        ret = mean_interval([e.return_ for e in kept])
        result.update(success_ci95_low=success.low, success_ci95_high=success.high,
                      mean_return_ci95_low=ret.low, mean_return_ci95_high=ret.high)
    result["env_errors"] = len(episodes) - len(kept)
    result["context_ended"] = sum(e.end_reason == "context" for e in kept)  # trajectory mode: the sequence was full
    return result


def evaluate(config: Config, episodes: int, split: str | None = None, show_progress: bool = False) -> dict[str, Any]:
    from pawkit.rollout.envpool import build_env  # early checks: the env, options and split before the model loads

    if episodes < 1:
        raise UsageError(f"episodes must be at least 1, got {episodes}")
    env = build_env(config.env.name, config.env.options)
    split = split or config.env.eval_split
    try:
        check_split(env, split)
        check_engine(config.rollout.engine)
        if not list(env.tasks(split)):
            raise UsageError(f"split {split!r} of {env.name} has no tasks to evaluate on")
    except BaseException:
        env.close()
        raise
    model, tokenizer = load_model(config.model)
    model.eval()
    slots = eval_slots(config, episodes)
    sampled: dict[str, float] = {}
    width = max(slots, pass_slots(config))
    with make_env_pool(config.env.name, config.env.options, width, config.rollout.num_workers, config.rollout.step_timeout) as pool:
        generator = build_engine(model, tokenizer, config.rollout)
        try:
            batch = play_split(env, pool, generator, config, episodes, split, slots, "auto" if show_progress else "off")
            if config.trainer.eval_pass_k:
                sampled, _ = sampled_evaluation(env, pool, generator, config, split, "auto" if show_progress else "off")
        finally:
            close_engine(generator)
    env.close()
    if batch.env_error_messages:  # never a silent 0.0: say what went wrong, and stop if nothing was left
        first = batch.env_error_messages[0].splitlines()[0]  # "task: Type: message" (its traceback follows)
        kept = sum(e.end_reason != "env_error" for e in batch.episodes)
        if not kept:
            raise EvaluationFailed(f"all {len(batch.episodes)} evaluation episodes hit env errors; the first: {first}")
        print(f"warning: {len(batch.env_error_messages)} of {len(batch.episodes)} evaluation episodes hit env errors "
              f"(not counted); the first: {first}", file=sys.stderr)
    result = summarize(config.env.name, batch.episodes)
    result.update(wm_accuracy(model, tokenizer, batch.samples, config))
    result.update(sampled)
    result["split"] = split
    return result


def episode_returns(episodes: list[Episode]) -> list[tuple[str, float]]:
    """(pairing key, return) per episode that did not hit an env error; the key is the task id and
    its occurrence number, so an evaluation that cycles through a split still pairs one to one."""
    seen: dict[str, int] = {}
    out = []
    for e in episodes:
        k = seen[e.task_id] = seen.get(e.task_id, -1) + 1
        if e.end_reason != "env_error":
            out.append((f"{e.task_id}#{k}", float(e.return_)))
    return out


def paired_change(before: list[tuple[str, float]], after: list[tuple[str, float]]) -> dict[str, float] | None:
    """after − before mean return over the episodes both evaluations played (same task, same
    occurrence): its 95 % t interval and the sign-flip permutation p-value; None without pairs."""
    first = dict(before)
    pairs = [(first[key], value) for key, value in after if key in first]
    if not pairs:
        return None
    diff = paired_difference([b for b, _ in pairs], [a for _, a in pairs])
    return {"pairs": diff.interval.n, "mean_return_change": diff.interval.estimate, "ci95_low": diff.interval.low,
            "ci95_high": diff.interval.high, "p_value": diff.p_value}
