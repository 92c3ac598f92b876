"""The training loop: rollout → advantages → (PaW plan) → one update → metrics → checkpoint.

The whole loss is in ``update``: PPO-clip on action tokens, low-variance KL to the reference
policy, an optional entropy bonus, and Σ_g λ_g · WM loss on the selected transitions' next-
observation tokens, all from the same forward pass. Strategies come from the registries;
the trainer never branches on their names.
"""

from __future__ import annotations

import contextlib
import json
import math
import platform
import random
import resource
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from pawkit import __version__, plugins
from pawkit.config import Config, dump_config
from pawkit.rollout.envpool import make_env_pool
from pawkit.rollout.generate import Generator
from pawkit.rollout.run import draw_tasks, run_rollout
from pawkit.rollout.samples import RolloutBatch
from pawkit.strategies import StepRows
from pawkit.train import checkpoint
from pawkit.train.batching import TrainingSequence, forward, micro_batches
from pawkit.train.distributed import Distributed
from pawkit.train.losses import low_var_kl, ppo_clip_loss
from pawkit.train.models import load_model
from pawkit.train.paw import drop_unweighted_targets, plan, training_sequence


class TrainingStopped(RuntimeError):
    """The run cannot continue (e.g. too many env errors); the message says why."""


@dataclass
class TrainState:
    step: int = 0
    task_rng: random.Random = field(default_factory=random.Random)
    selector_gen: torch.Generator = field(default_factory=torch.Generator)
    nonfinite_skips: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "task_rng": self.task_rng.getstate(),
            "selector_gen": self.selector_gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "python_rng": random.getstate(),
            "nonfinite_skips": self.nonfinite_skips,
        }

    def load(self, data: dict[str, Any]) -> None:
        self.step = data["step"]
        self.task_rng.setstate(data["task_rng"])
        self.selector_gen.set_state(data["selector_gen"])
        torch.set_rng_state(data["torch_rng"])
        random.setstate(data["python_rng"])
        self.nonfinite_skips = data.get("nonfinite_skips", 0)


RANK_SEED_STRIDE = 100_003


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:
        pass


class Trainer:
    def __init__(self, config: Config, resume: bool = False):
        self.cfg = config
        self.out = Path(config.trainer.output_dir)
        self.dist = Distributed()
        seed_everything(config.seed)
        # Rank 0 keeps the single-process streams; other ranks draw their own tasks and samples.
        self.state = TrainState(task_rng=random.Random(config.seed + RANK_SEED_STRIDE * self.dist.rank))
        self.state.selector_gen.manual_seed(config.seed)
        plugins.get("advantage_estimator", config.algorithm.name)  # fail before the model loads
        if config.paw.enabled:
            for kind, name in (("selector", config.paw.selector), ("wm_loss", config.paw.wm_loss), ("balancer", config.paw.balancer)):
                plugins.get(kind, name)
        resume_from = checkpoint.latest(self.out) if resume else None
        model_cfg = config.model
        if resume_from is not None:
            model_cfg = model_cfg.model_copy(update={"name": str(resume_from / "model")})
            saved = checkpoint.load_state(resume_from)
            per_rank = saved.get("train_states") or [saved["train_state"]]
            if len(per_rank) != self.dist.world:
                raise TrainingStopped(
                    f"{resume_from} was written by {len(per_rank)} process(es) but this run has {self.dist.world}; "
                    "resume with the same number of processes (each keeps its own RNG streams)"
                )
        # The env first: a bad data folder or option fails in seconds, not after the model loads.
        self.env = plugins.get("env", config.env.name)(**config.env.options)
        try:
            self.env.tasks(config.env.train_split)
            self.model, self.tokenizer = load_model(model_cfg)
            self.dist.broadcast_parameters(self.model)
            if self.dist.rank:
                torch.manual_seed(config.seed + RANK_SEED_STRIDE * self.dist.rank)
            self.model.train()
            self.uses_lora = hasattr(self.model, "peft_config")
            self.reference = None
            if config.algorithm.kl_coef > 0 and not self.uses_lora:
                self.reference, _ = load_model(config.model.model_copy(update={"gradient_checkpointing": False}))
                self.reference.eval().requires_grad_(False)
            params = [p for p in self.model.parameters() if p.requires_grad]
            self.optimizer = torch.optim.AdamW(params, lr=config.trainer.lr, weight_decay=config.trainer.weight_decay)
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
            slots = config.rollout.tasks_per_step * config.rollout.group_size
            self.pool = make_env_pool(
                config.env.name, config.env.options, slots, config.rollout.num_workers, config.rollout.step_timeout
            )
            self.generator = Generator(self.model, self.tokenizer, config.rollout)
            if resume_from is not None:
                self.optimizer.load_state_dict(saved["optimizer"])
                self.scheduler.load_state_dict(saved["scheduler"])
                self.state.load(per_rank[self.dist.rank])
        except BaseException:
            self.env.close()  # e.g. a JVM-backed env must not outlive a failed start
            raise
        self.resumed_from = resume_from
        self.nonfinite_in_a_row = 0

    def _lr_factor(self, step: int) -> float:
        t = self.cfg.trainer
        if t.warmup_steps and step < t.warmup_steps:
            return (step + 1) / t.warmup_steps
        progress = (step - t.warmup_steps) / max(1, t.steps - t.warmup_steps)
        return {"constant": 1.0, "linear": 1.0 - progress, "cosine": 0.5 * (1 + math.cos(math.pi * progress))}[t.lr_schedule]

    # ---------------------------------------------------------------- one step
    def rollout(self) -> RolloutBatch:
        c = self.cfg
        tasks = draw_tasks(self.env, c.env.train_split, c.rollout.tasks_per_step, self.state.task_rng)
        return run_rollout(self.env, self.pool, self.generator, tasks, c.rollout.group_size, c.rollout, c.rollout.temperature)

    def sequences(self, batch: RolloutBatch) -> list[TrainingSequence]:
        paw = self.cfg.paw
        return [training_sequence(self.tokenizer, s, paw, with_wm=paw.enabled) for s in batch.samples]

    def advantages(self, batch: RolloutBatch) -> torch.Tensor:
        s = batch.samples
        rows = StepRows(
            group_ids=[x.group_id for x in s],
            traj_ids=[x.traj_id for x in s],
            step_index=[x.step_index for x in s],
            reward=[x.reward for x in s],
            episode_return=[x.episode_return for x in s],
            anchor=[x.anchor for x in s],
            invalid=[x.invalid for x in s],
            penalty=self.cfg.rollout.invalid_penalty,
        )
        return plugins.get("advantage_estimator", self.cfg.algorithm.name)(rows, self.cfg.algorithm).float()

    @torch.no_grad()
    def old_logprobs(self, seqs: list[TrainingSequence]):
        """Old and reference log-probs plus mean action entropy per row (actions only: cheaper)."""
        temp = self.cfg.rollout.temperature
        budget, pad, vocab = self.cfg.trainer.micro_batch_tokens, self.tokenizer.pad_token_id, len(self.tokenizer)
        old: list[torch.Tensor] = [torch.empty(0)] * len(seqs)
        ref: list[torch.Tensor] = [torch.empty(0)] * len(seqs)
        entropy = torch.zeros(len(seqs))
        for mb in micro_batches(seqs, budget, pad, vocab, with_wm=False):
            with self._autocast():
                out = forward(self.model, mb, temp)
            ref_out = None
            if self.cfg.algorithm.kl_coef > 0:
                with self._autocast(), self._reference() as reference:
                    ref_out = forward(reference, mb, temp)
            for b, i in enumerate(mb.index.tolist()):
                mask = mb.action_mask[b]
                old[i] = out.logprobs[b][mask].cpu()
                entropy[i] = out.entropy[b][mask].mean().cpu() if mask.any() else 0.0
                if ref_out is not None:
                    ref[i] = ref_out.logprobs[b][mask].cpu()
        return old, ref, entropy

    @contextlib.contextmanager
    def _reference(self):
        if self.uses_lora:
            with self.model.disable_adapter():
                yield self.model
        else:
            yield self.reference

    def _autocast(self):
        if self.cfg.trainer.bf16:
            return torch.autocast(device_type=next(self.model.parameters()).device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def paw_weights(self, batch: RolloutBatch, seqs: list[TrainingSequence], entropy: torch.Tensor):
        position = {g: i for i, g in enumerate(dict.fromkeys(s.group_id for s in batch.samples))}
        index = torch.tensor([position[s.group_id] for s in batch.samples], dtype=torch.long)
        returns: dict[str, list[float]] = {g: [] for g in position}
        for e in batch.episodes:
            if e.end_reason != "env_error" and e.group_id in returns:
                returns[e.group_id].append(e.return_)
        means = torch.tensor([sum(r) / len(r) for r in returns.values()])
        eligible = torch.tensor([bool(s.wm_ids) for s in seqs])
        return plan(entropy, eligible, index, means, self.env.max_return, self.cfg.paw, self.state.selector_gen), eligible

    def update(self, seqs, advantages, old, ref, weights) -> dict[str, float]:
        c = self.cfg
        alg, temp = c.algorithm, c.rollout.temperature
        wm_loss_fn = plugins.get("wm_loss", c.paw.wm_loss) if c.paw.enabled else None
        total_tokens = max(sum(len(s.response_ids) for s in seqs), 1)
        sums: dict[str, float] = {}

        def add(key: str, value: float) -> None:
            sums[key] = sums.get(key, 0.0) + float(value)

        for _ in range(alg.ppo_epochs):
            self.optimizer.zero_grad(set_to_none=True)
            for mb in micro_batches(seqs, c.trainer.micro_batch_tokens, self.tokenizer.pad_token_id, len(self.tokenizer)):
                with self._autocast():
                    out = forward(self.model, mb, temp)
                device = out.logprobs.device
                rows = mb.index.tolist()
                mask = mb.action_mask.to(device)
                share = mask.sum().item() / total_tokens
                old_lp = _scatter(mask, [old[i] for i in rows], device)
                adv = advantages[mb.index].to(device).unsqueeze(1).expand_as(mask)
                pg, clipfrac = ppo_clip_loss(out.logprobs, old_lp, adv, mask, alg.clip_low, alg.clip_high, alg.clip_ratio_c)
                loss = pg * share
                add("pg_loss", pg.item() * share)
                add("clip_fraction", float(clipfrac) * share)
                ent = (out.entropy * mask).sum() / total_tokens
                add("entropy", ent.item())
                loss = loss - alg.entropy_coef * ent
                if alg.kl_coef > 0:
                    ref_lp = _scatter(mask, [ref[i] for i in rows], device)
                    kl = (low_var_kl(out.logprobs, ref_lp) * mask).sum() / total_tokens
                    loss = loss + alg.kl_coef * kl
                    add("kl", kl.item())
                if wm_loss_fn is not None:
                    wm_mask = mb.wm_mask.to(device)
                    per_row = wm_loss_fn(out.logprobs, wm_mask, c.paw)
                    w = weights[mb.index].to(device)
                    wm = (per_row * w).sum()
                    loss = loss + wm
                    add("paw/wm_loss_weighted", wm.item())
                    chosen = w > 0
                    if chosen.any():
                        sel_mask = wm_mask & chosen.unsqueeze(1)
                        add("paw/_raw_sum", per_row[chosen].sum().item())
                        add("paw/_tokens", sel_mask.sum().item())
                        add("paw/_correct", out.wm_correct[sel_mask].sum().item())
                        add("paw/_prob", out.logprobs[sel_mask].exp().sum().item())
                loss.backward()
            metrics = self._step_optimizer()
        for key, value in metrics.items():
            sums[key] = value
        return {k: v / alg.ppo_epochs if k in ("pg_loss", "clip_fraction", "entropy", "kl", "paw/wm_loss_weighted") else v for k, v in sums.items()}

    def _step_optimizer(self) -> dict[str, float]:
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.dist.average_gradients(params)
        norm = torch.nn.utils.clip_grad_norm_(params, self.cfg.trainer.grad_clip)
        if not torch.isfinite(norm):
            self.optimizer.zero_grad(set_to_none=True)
            self.state.nonfinite_skips += 1
            if self.dist.is_main:
                print(f"warning: step {self.state.step + 1}: non-finite loss or gradient, update skipped", file=sys.stderr)
            return {"grad_norm": float("nan"), "skipped_update": 1.0}
        self.optimizer.step()
        self.scheduler.step()
        return {"grad_norm": float(norm), "skipped_update": 0.0}

    def train_step(self) -> dict[str, float]:
        t0 = time.perf_counter()
        batch = self.rollout()
        self.last_batch = batch
        metrics = batch.metrics()
        kept = sum(e.end_reason != "env_error" for e in batch.episodes)
        reports = self.dist.gather((batch.env_errors, len(batch.episodes), batch.env_error_messages))
        errors, episodes = sum(r[0] for r in reports), sum(r[1] for r in reports)
        messages = [m for r in reports for m in r[2]]
        if messages and self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            with open(self.out / "env_errors.log", "a") as fh:
                fh.writelines(f"step {self.state.step + 1}: {m}\n" for m in messages)
        if errors / max(episodes, 1) > self.cfg.trainer.max_env_error_rate:
            raise TrainingStopped(
                f"{errors} of {episodes} episodes hit env errors at step {self.state.step + 1} "
                f"(limit trainer.max_env_error_rate={self.cfg.trainer.max_env_error_rate}); see {self.out / 'env_errors.log'}"
            )
        rollout_seconds = time.perf_counter() - t0
        has_work = bool(kept and batch.samples)
        anyone_has_work = self.dist.any(has_work)  # collective: every process asks once per step
        if not has_work and anyone_has_work:
            # Another process has samples: join its gradient all-reduce with zero gradients.
            for _ in range(self.cfg.algorithm.ppo_epochs):
                self.optimizer.zero_grad(set_to_none=True)
                metrics.update(self._step_optimizer())
        if has_work:
            seqs = self.sequences(batch)
            advantages = self.advantages(batch)
            old, ref, entropy = self.old_logprobs(seqs)
            weights = torch.zeros(len(seqs))
            if self.cfg.paw.enabled:
                paw_plan, eligible = self.paw_weights(batch, seqs, entropy)
                weights = paw_plan.weights
                metrics.update(paw_plan.metrics(eligible))
                seqs = drop_unweighted_targets(seqs, weights)
                metrics["paw/wm_tokens"] = float(sum(len(s.wm_ids) for s in seqs))
            metrics.update(self.update(seqs, advantages, old, ref, weights))
            metrics["advantage_mean"] = float(advantages.mean())
            metrics["action_tokens"] = float(sum(len(s.response_ids) for s in seqs))
        raw_sum, tokens = metrics.pop("paw/_raw_sum", None), metrics.pop("paw/_tokens", None)
        correct, prob = metrics.pop("paw/_correct", None), metrics.pop("paw/_prob", None)
        if self.cfg.paw.enabled:
            selected = max(1, round(metrics.get("paw/selected_fraction", 0) * len(batch.samples)))
            metrics["paw/wm_loss_raw"] = (raw_sum or 0.0) / selected
            metrics["paw/wm_token_accuracy"] = (correct or 0.0) / max(tokens or 0.0, 1.0)
            metrics["paw/wm_target_prob"] = (prob or 0.0) / max(tokens or 0.0, 1.0)
        self.state.step += 1
        elapsed = time.perf_counter() - t0
        metrics.update(
            step=float(self.state.step),
            step_seconds=elapsed,
            rollout_seconds=rollout_seconds,
            tokens_per_second=metrics["generated_tokens"] / max(metrics["generate_seconds"], 1e-9),
            lr=self.scheduler.get_last_lr()[0],
            peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        )
        if torch.cuda.is_available():
            metrics["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
        return self.dist.combine_metrics(metrics)

    def evaluate(self) -> dict[str, float]:
        """Held-out episodes at the eval temperature (0 = greedy), counted in the step's metrics."""
        from pawkit.train.evaluate import play_split, summarize

        c = self.cfg
        slots = c.rollout.tasks_per_step * c.rollout.group_size
        with _rng_preserved():
            batch = play_split(self.env, self.pool, self.generator, c, c.trainer.eval_episodes, c.env.eval_split, slots)
        if batch.env_error_messages:
            with open(self.out / "env_errors.log", "a") as fh:
                fh.writelines(f"eval after step {self.state.step}: {m}\n" for m in batch.env_error_messages)
        summary = summarize(c.env.name, batch.episodes)
        return {f"eval/{k}": float(v) for k, v in summary.items() if isinstance(v, (int, float))}

    def save(self) -> Path | None:
        """Collective: every process hands its RNG streams to rank 0, which writes the checkpoint."""
        train_states = self.dist.gather(self.state.to_dict())
        path = None
        if self.dist.is_main:
            state = {
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "train_state": train_states[0],
            }
            if self.dist.enabled:
                state["train_states"] = train_states
            path = checkpoint.save(self.out, self.state.step, self.model, self.tokenizer, state, self.cfg.trainer.keep_checkpoints)
        self.dist.barrier()
        return path

    def close(self) -> None:
        self.pool.close()
        self.env.close()


@contextlib.contextmanager
def _rng_preserved():
    """Evaluation must not shift the training RNG streams (exact resume depends on them)."""
    state = torch.get_rng_state()
    try:
        yield
    finally:
        torch.set_rng_state(state)


def _scatter(mask: torch.Tensor, values: list[torch.Tensor], device) -> torch.Tensor:
    out = torch.zeros(mask.shape, device=device)
    for b, v in enumerate(values):
        out[b][mask[b]] = v.to(device)
    return out


class _StopRequest:
    """SIGINT/SIGTERM ask the loop to checkpoint at the next safe point (between steps) and exit."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:
        if self.requested:  # a second signal: the user really wants out now
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> "_StopRequest":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def write_run_info(config: Config, out: Path) -> None:
    import transformers

    out.mkdir(parents=True, exist_ok=True)
    info = {
        "config": config.model_dump(mode="json"),
        "versions": {"pawkit": __version__, "torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version()},
    }
    (out / "run.json").write_text(json.dumps(info, indent=2))
    (out / "config.yaml").write_text(dump_config(config))


def train(config: Config, resume: bool = False, show_progress: bool = True, on_step=None) -> list[dict[str, float]]:
    """Run ``trainer.steps`` steps (continuing from a checkpoint with ``resume``); returns the metrics."""
    import transformers

    from pawkit.train.runlog import RunLogger

    transformers.utils.logging.disable_progress_bar()
    trainer = Trainer(config, resume=resume)
    main = trainer.dist.is_main  # evaluation, logs and files are rank 0's job
    if main:
        write_run_info(config, trainer.out)
    history: list[dict[str, float]] = []
    stop = _StopRequest()
    before: dict[str, float] | None = None
    try:
        if config.trainer.eval_before_after and trainer.state.step == 0 and main:
            before = trainer.evaluate()
        logger = RunLogger(trainer.out, config, start=trainer.state.step, enabled=show_progress) if main else contextlib.nullcontext()
        with stop, logger as log:
            while trainer.state.step < config.trainer.steps:
                metrics = trainer.train_step()
                step = trainer.state.step
                if config.trainer.eval_every and step % config.trainer.eval_every == 0 and main:
                    metrics.update(trainer.evaluate())
                if metrics.get("skipped_update"):
                    trainer.nonfinite_in_a_row += 1
                    if trainer.nonfinite_in_a_row >= config.trainer.max_nonfinite_in_a_row:
                        raise TrainingStopped(
                            f"{trainer.nonfinite_in_a_row} updates in a row had a non-finite loss or gradient "
                            f"(step {trainer.state.step}); the last good checkpoint is kept in {checkpoint.checkpoint_root(trainer.out)}"
                        )
                else:
                    trainer.nonfinite_in_a_row = 0
                history.append(metrics)
                if main:
                    log.step(metrics)
                    if config.trainer.dump_trajectories_every and step % config.trainer.dump_trajectories_every == 0:
                        log.dump_episodes(step, trainer.last_batch.episodes)
                if step % config.trainer.save_every == 0 or step == config.trainer.steps:
                    trainer.save()
                target = config.trainer.early_stop_success
                # Greedy eval success when evals run; the training batch's only when they never do.
                judged = metrics.get("eval/success_rate", None if config.trainer.eval_every else metrics["success_rate"])
                reached = target is not None and judged is not None and judged >= target
                asked = stop.requested or (on_step is not None and on_step(trainer, metrics))
                if trainer.dist.any(asked) or trainer.dist.broadcast(reached):  # every process stops together
                    trainer.save()
                    break
        if config.trainer.eval_before_after and main:
            after = trainer.evaluate()
            report = {"before": before, "after": after, "steps": trainer.state.step}
            (trainer.out / "eval_before_after.json").write_text(json.dumps(report, indent=2))
            if show_progress:
                first = f"{before['eval/success_rate']:.3f}" if before else "n/a (resumed)"
                print(
                    f"{config.env.name}: success on {config.trainer.eval_episodes} {config.env.eval_split} episodes "
                    f"(temperature {config.rollout.eval_temperature}): "
                    f"before {first}, after {after['eval/success_rate']:.3f} (mean return "
                    f"{(before or {}).get('eval/mean_return', float('nan')):.3f} -> {after['eval/mean_return']:.3f})"
                )
    finally:
        trainer.close()
    return history
