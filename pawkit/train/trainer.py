"""The training loop: rollout → advantages → (PaW plan) → update → metrics → checkpoint.

``Trainer.train_step`` is one step, ``train`` the loop around it (evaluation, logging, early
stop, checkpoints, signals). The loss and the optimizer step are in pawkit/train/update.py, the
step's metrics accumulator in pawkit/train/metrics.py, the resumable state in
pawkit/train/state.py. Strategies come from the registries; the trainer never branches on
their names.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import resource
import sys
import time
from pathlib import Path

import torch

from pawkit.cache import cache_dir
from pawkit.config import Config, check_writable_dir
from pawkit.protocol import UsageError
from pawkit.rollout.envpool import build_env, make_env_pool
from pawkit.rollout.engines import build_engine, check_engine, close_engine, logprob_check, sync_engine
from pawkit.rollout.run import check_splits, draw_tasks, run_rollout
from pawkit.rollout.samples import RolloutBatch
from pawkit.strategies import StepRows, gae
from pawkit.train import checkpoint
from pawkit.train.batching import TrainingSequence
from pawkit.train.critic import build_critic
from pawkit.train.distributed import Distributed
from pawkit.train.evaluate import eval_slots, paired_change, pass_slots
from pawkit.train.filtering import sample_step
from pawkit.train.metrics import Metrics, add_rollout_metrics, reset_peak_memory
from pawkit.train.models import load_model
from pawkit.train.paw import drop_unweighted_targets, plan, training_sequence
from pawkit.train.rows import group_rows, step_rows
from pawkit.train.runlog import NoSpaceLeft, append_lines, is_disk_full
from pawkit.train.state import (
    RANK_SEED_STRIDE,
    StopRequest,
    TrainState,
    cuda_devices,
    rng_preserved,
    seed_everything,
    write_run_info,
)
from pawkit.train.strategy_calls import RunStrategies
from pawkit.train.update import PolicyUpdate, load_reference


class TrainingStopped(RuntimeError):
    """The run cannot continue (e.g. too many env errors); the message says why."""


class Trainer(PolicyUpdate):
    def __init__(self, config: Config, resume: bool | Path = False):
        self.cfg = config
        self.out = Path(config.trainer.output_dir)
        self.dist = Distributed()
        seed_everything(config.seed)
        # Rank 0 keeps the single-process streams; other ranks draw their own tasks and samples.
        self.state = TrainState(task_rng=random.Random(config.seed + RANK_SEED_STRIDE * self.dist.rank))
        self.state.selector_gen.manual_seed(config.seed)
        self.strategies = RunStrategies(config)  # unknown names, bad options: one line before the model loads
        check_engine(config.rollout.engine, config.rollout)  # an unknown engine, no vLLM: one line before the model loads
        # A checkpoint folder (train's RunDir picked and verified it), or True: the newest intact one.
        resume_from = resume if isinstance(resume, Path) else (checkpoint.resume_point(self.out)[0] if resume else None)
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
        # Pre-flight, before the model loads: a user's mistake is one line (exit 2), not a late traceback.
        check_writable_dir(self.out, "trainer.output_dir")
        if model_cfg.name == "smollm2-135m" and not (cache_dir() / "models" / model_cfg.name / "config.json").exists():
            check_writable_dir(cache_dir(), "PAWKIT_CACHE")  # its one-time conversion is written there
        # The env first: a bad data folder or option fails in seconds, not after the model loads.
        self.env = build_env(config.env.name, config.env.options)
        try:
            evaluates = bool(config.trainer.eval_every or config.trainer.eval_before_after)
            check_splits(self.env, config.env.train_split, config.env.eval_split, evaluates)
            if config.trainer.eval_pass_k and not evaluates:
                print("warning: trainer.eval_pass_k is set but no evaluation runs (eval_every 0, eval_before_after false)", file=sys.stderr)
            self.env.tasks(config.env.train_split)
            self.model, self.tokenizer = load_model(model_cfg)
            self.dist.broadcast_parameters(self.model)
            if self.dist.rank:
                torch.manual_seed(config.seed + RANK_SEED_STRIDE * self.dist.rank)
            self.model.train()
            self.uses_lora = hasattr(self.model, "peft_config")
            self.state.cuda_devices = cuda_devices(self.model)
            # The policy the run starts from (config.model, also on resume): update.load_reference.
            self.reference, self.reference_adapter = load_reference(config, self.model, self.uses_lora)
            self.critic = build_critic(self.strategies.needs_values, self.model)  # ppo's value head (pawkit/train/critic.py)
            if self.critic is not None and resume_from is not None:
                if "critic" not in saved:
                    raise UsageError(f"{resume_from / 'trainer_state.pt'} holds no critic (value head); it was not written by a run of this estimator")
                self.critic.load_state_dict(saved["critic"])
            params = self.trainable_parameters()
            self.optimizer = torch.optim.AdamW(params, lr=config.trainer.lr, weight_decay=config.trainer.weight_decay)
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
            # an evaluation may play more episodes at once (trainer.eval_batch_episodes)
            slots = max(config.rollout.tasks_per_step * config.rollout.group_size,
                        max(eval_slots(config, config.trainer.eval_episodes), pass_slots(config)) if evaluates else 1)
            self.pool = make_env_pool(
                config.env.name, config.env.options, slots, config.rollout.num_workers, config.rollout.step_timeout
            )
            self.generator = build_engine(self.model, self.tokenizer, config.rollout)  # rollout.engine (pawkit/rollout/engines.py)
            if resume_from is not None:
                self.optimizer.load_state_dict(saved["optimizer"])
                self.scheduler.load_state_dict(saved["scheduler"])
                try:
                    self.state.load(per_rank[self.dist.rank])
                except (RuntimeError, ValueError, TypeError, KeyError) as exc:  # e.g. a bad RNG tensor
                    raise UsageError(f"cannot restore the RNG streams of {resume_from / 'trainer_state.pt'}: {exc}") from None
                for key in self.strategies.load_state_dict(saved.get("strategies", {})):
                    print(f"warning: {resume_from} has no state for {key}; it starts fresh", file=sys.stderr)
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

    def sequences(self, batch: RolloutBatch, metrics: Metrics | None = None) -> list[TrainingSequence]:
        """One per sample; with PaW in step mode the WM targets are the ``paw.targets`` strategy's
        texts (in trajectory mode, the observations in the sequence)."""
        paw = self.cfg.paw
        if not (paw.enabled and self.cfg.rollout.context == "step"):
            return [training_sequence(self.tokenizer, s, paw, with_wm=paw.enabled) for s in batch.samples]
        texts = self.strategies.targets(self.step_rows(batch), self.state.step + 1, self.state.selector_gen, metrics)
        return [training_sequence(self.tokenizer, s, paw, target=t) for s, t in zip(batch.samples, texts)]

    def step_rows(self, batch: RolloutBatch, seqs: list[TrainingSequence] | None = None, entropy: torch.Tensor | None = None) -> StepRows:
        return step_rows(batch, self.cfg.rollout.invalid_penalty, seqs, entropy)

    def advantages(self, batch: RolloutBatch, rows: StepRows | None = None, metrics: Metrics | None = None) -> torch.Tensor:
        """The registered estimator's advantage per sample ``[N]``, checked."""
        rows = rows if rows is not None else self.step_rows(batch)
        groups, _ = group_rows(batch)
        gen = self.state.selector_gen
        return self.strategies.advantages(rows, groups, self.state.step + 1, self.env.max_return, gen, metrics)

    def paw_weights(self, batch: RolloutBatch, seqs: list[TrainingSequence], entropy: torch.Tensor,
                    rows: StepRows | None = None, metrics: Metrics | None = None):
        rows = rows if rows is not None else self.step_rows(batch, seqs, entropy)
        groups, index = group_rows(batch)
        eligible = torch.tensor([bool(s.wm_ids) for s in seqs])
        step, gen = self.state.step + 1, self.state.selector_gen
        return plan(self.strategies, rows, groups, index, eligible, step, self.env.max_return, gen, metrics), eligible

    def train_step(self) -> dict[str, float]:
        """One step; its metrics (namespaced keys, docs/training.md) combined over processes."""
        t0 = time.perf_counter()
        reset_peak_memory(self.state.cuda_devices)
        step = sample_step(self.rollout, self.cfg)  # one round, more with algorithm.resample (pawkit/train/filtering.py)
        batch = step.played
        rollout_seconds = time.perf_counter() - t0  # this process's own rollout, before waiting for the others
        self.last_batch = batch
        metrics = Metrics()
        add_rollout_metrics(metrics, batch)
        step.record(metrics)
        reports = self.dist.gather((batch.env_errors - batch.engine_lost, len(batch.episodes), batch.env_error_messages))
        errors, episodes = sum(r[0] for r in reports), sum(r[1] for r in reports)  # an engine's lost turn is not the env's fault
        messages = [m for r in reports for m in r[2]]
        if messages and self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            append_lines(self.out / "env_errors.log", [f"step {self.state.step + 1}: {m}\n" for m in messages])
        if errors / max(episodes, 1) > self.cfg.trainer.max_env_error_rate:
            raise TrainingStopped(
                f"{errors} of {episodes} episodes hit env errors at step {self.state.step + 1} "
                f"(limit trainer.max_env_error_rate={self.cfg.trainer.max_env_error_rate}); see {self.out / 'env_errors.log'}"
            )
        lr = self.optimizer.param_groups[0]["lr"]  # what every optimizer step of this step uses
        steps_before = self.optimizer_steps
        self.learn(step.kept, metrics, step.rl_groups)
        if self.cfg.paw.enabled:  # always logged with PaW: 0.0 when nothing was trained on
            for key in ("paw/wm_loss_raw", "paw/wm_token_accuracy", "paw/wm_target_prob", "paw/cmae_above_rho",
                        "paw/cmae_active", "paw/cmae_below_eps"):
                metrics.add(key, 0.0, weight=0.0)
        if self.optimizer_steps > steps_before:  # once per training step (not per epoch) whose update ran
            self.scheduler.step()
            sync_engine(self.generator, self.model)  # an engine with its own weights samples the new policy next step
        self.state.step += 1
        metrics.set("step", self.state.step)
        metrics.set("perf/step_seconds", time.perf_counter() - t0)
        metrics.set("perf/rollout_seconds", rollout_seconds)
        metrics.set("perf/tokens_per_second", batch.generated_tokens / max(batch.generate_seconds, 1e-9))
        metrics.set("loss/lr", lr)
        metrics.set("perf/peak_rss_mb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        if self.state.cuda_devices:
            metrics.set("perf/peak_gpu_mb", max(torch.cuda.max_memory_allocated(d) for d in self.state.cuda_devices) / 2**20)
        return self.dist.combine_metrics(metrics)

    def learn(self, batch: RolloutBatch, metrics: Metrics, rl_groups: set[str] | None = None) -> None:
        """Advantages → old/reference log-probs → PaW plan → ``update``, on one rollout batch.

        ``rl_groups``: the groups in the RL loss (None: all); the others are WM data only.

        Collective: every process calls it once per step. One without samples joins the
        others' all-reduces with none; PaW's weights λ_g / (groups · selected in g) count the
        groups of every process, so the summed WM term is the one-process term on all rows.
        """
        kept = sum(e.end_reason != "env_error" for e in batch.episodes)
        has_work = bool(kept and batch.samples)
        groups = len({s.group_id for s in batch.samples}) if has_work else 0
        reports = self.dist.gather((has_work, groups))  # collective: every process asks once per step
        if not any(work for work, _ in reports):
            return
        if not has_work:
            self.update([], torch.zeros(0), [], [], torch.zeros(0), metrics, 0)
            return
        seqs = self.sequences(batch, metrics)
        t_pass = time.perf_counter()
        old, ref, entropy, *values = self.old_logprobs(seqs, batch.samples, with_values=self.critic is not None)
        metrics.set("perf/logprob_pass_seconds", time.perf_counter() - t_pass)  # 0-ish: sampler's log-probs reused, no KL
        self.tis_weights = logprob_check(self.generator, old, batch.samples, self.cfg.rollout.vllm.tis_cap, metrics)  # vLLM vs trainer
        rows = self.step_rows(batch, seqs, entropy)
        value_targets = None
        if values:  # a critic: V_old(s_t) for the estimator, GAE returns for the value loss
            rows.values = values[0].tolist()
            value_targets = (values[0], torch.tensor(gae(rows, self.cfg.algorithm.gamma, self.cfg.algorithm.gae_lambda)[1]))
        advantages = self.advantages(batch, rows, metrics)
        rl = torch.tensor([rl_groups is None or s.group_id in rl_groups for s in batch.samples])
        weights, selected = torch.zeros(len(seqs)), 0
        if self.cfg.paw.enabled:
            paw_plan, eligible = self.paw_weights(batch, seqs, entropy, rows, metrics)
            weights = paw_plan.weights * (groups / sum(g for _, g in reports))  # over all processes' groups
            selected = int(paw_plan.selected.sum())
            paw_plan.record(eligible, metrics)
            seqs = drop_unweighted_targets(seqs, weights)
            metrics.set("paw/wm_tokens", sum(len(s.wm_ids) for s in seqs))
        self.update(seqs, advantages, old, ref, weights, metrics, selected, rows=rows, rl=rl, value_targets=value_targets)
        self.last_learned = (batch, advantages, entropy, paw_plan if self.cfg.paw.enabled else None)  # pawkit/train/wm_view.py
        metrics.add("rollout/advantage_mean", float(advantages[rl].mean()) if rl.any() else 0.0, int(rl.sum()))
        metrics.set("rollout/action_tokens", sum(len(s.response_ids) for s, r in zip(seqs, rl) if r))

    def evaluate(self) -> dict[str, float]:
        """Held-out episodes at the eval temperature (0 = greedy), then the sampled pass@k ones when
        ``trainer.eval_pass_k`` is set, counted in the step's metrics (pawkit/train/evaluate.py)."""
        from pawkit.train.evaluate import held_out_evaluation

        result, self.last_eval_returns = held_out_evaluation(self)  # the returns pair the before/after evaluations
        return result

    def save(self) -> Path | None:
        """Collective: every process hands its RNG streams to rank 0, which writes the checkpoint."""
        train_states = self.dist.gather(self.state.to_dict())
        path = None
        if self.dist.is_main:
            state = {
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "train_state": train_states[0],
                "strategies": self.strategies.state_dict(),  # rank 0's; every process restores it
            }
            if self.critic is not None:
                state["critic"] = self.critic.state_dict()
            if self.dist.enabled:
                state["train_states"] = train_states
            path = checkpoint.save(self.out, self.state.step, self.model, self.tokenizer, state, self.cfg.trainer.keep_checkpoints,
                                   config=self.cfg.model_dump(mode="json"))
        self.dist.barrier()
        return path

    def close(self) -> None:
        if hasattr(self, "generator"):
            close_engine(self.generator)
        self.pool.close()
        self.env.close()


class History(list):
    """``train``'s per-step metrics; ``interrupted``: it stopped before ``trainer.steps`` on a
    signal or ``on_step`` (checkpoint saved), not by finishing or by early stop."""

    interrupted = False


def train(
    config: Config, resume: bool | str = False, show_progress: bool = True, on_step=None, overwrite: bool = False
) -> list[dict[str, float]]:
    """Run ``trainer.steps`` steps; returns the metrics. ``resume``: True continues from the newest
    intact checkpoint (refused without one), "auto" if there is one; ``overwrite`` deletes an
    earlier run in ``trainer.output_dir`` first (pawkit/train/rundir.py has the rules)."""
    from pawkit.train.rundir import RunDir, is_main_process

    with RunDir(config, resume=resume, overwrite=overwrite, main=is_main_process()) as run:
        try:
            return _train(config, run.checkpoint or False, show_progress, on_step)
        except OSError as exc:  # e.g. run.json or eval_before_after.json on a full disk: one line
            if is_disk_full(exc, Path(config.trainer.output_dir)):
                raise NoSpaceLeft(f"no space left on {config.trainer.output_dir}: {exc}") from None
            raise


def _train(config: Config, resume: bool | Path, show_progress: bool, on_step) -> list[dict[str, float]]:
    import transformers

    from pawkit.train.runlog import RunLogger, finish
    from pawkit.train.trackers import check_report_to
    from pawkit.train.wm_view import step_views

    transformers.utils.logging.disable_progress_bar()
    check_report_to(config)  # a missing tracker package: one line, before the model loads
    trainer = Trainer(config, resume=resume)
    trainer.eval_progress = "lines" if show_progress else "off"  # --quiet: no eval progress lines either
    main = trainer.dist.is_main  # evaluation, logs and files are rank 0's job
    if main and trainer.resumed_from is None:  # a resume keeps the run's first config.yaml/run.json
        write_run_info(config, trainer.out)
    guard = checkpoint.FiniteGuard(trainer.model)
    history = History()
    stop = StopRequest()
    before: dict[str, float] | None = None
    change: dict[str, float] | None = None
    before_returns: list[tuple[str, float]] = []  # (task, return) per episode, paired with the after-eval's
    try:
        if config.trainer.eval_before_after and trainer.state.step == 0 and main:
            before = trainer.evaluate()
            before_returns = trainer.last_eval_returns
        logger = RunLogger(trainer.out, config, start=trainer.state.step, enabled=show_progress) if main else contextlib.nullcontext()
        with stop, logger as log:
            while trainer.state.step < config.trainer.steps:
                guard.before()
                try:
                    metrics = trainer.train_step()
                except RuntimeError as exc:  # finite weights whose outputs overflow: one line, checkpoints kept
                    if (why := checkpoint.divergence(exc)) is None:
                        raise
                    raise TrainingStopped(f"step {trainer.state.step + 1}: {why}; complete checkpoints are kept in "
                                          f"{checkpoint.checkpoint_root(trainer.out)}") from exc
                guard.after(trainer.state, metrics, warn=main)  # finite gradients, non-finite weights: rolled back
                step = trainer.state.step
                if config.trainer.eval_every and step % config.trainer.eval_every == 0 and main:
                    metrics.update(trainer.evaluate())
                if metrics.get("loss/skipped_update"):
                    trainer.nonfinite_in_a_row += 1
                    if trainer.nonfinite_in_a_row >= config.trainer.max_nonfinite_in_a_row:
                        raise TrainingStopped(
                            f"{trainer.nonfinite_in_a_row} updates in a row had a non-finite loss, gradient or weights "
                            f"(step {trainer.state.step}); the last good checkpoint is kept in {checkpoint.checkpoint_root(trainer.out)}"
                        )
                else:
                    trainer.nonfinite_in_a_row = 0
                history.append(metrics)
                if main:
                    log.step(metrics)
                    if config.trainer.dump_trajectories_every and step % config.trainer.dump_trajectories_every == 0:
                        log.dump_episodes(step, trainer.last_batch.episodes, step_views(trainer))
                if step % config.trainer.save_every == 0 or step == config.trainer.steps:
                    trainer.save()
                target = config.trainer.early_stop_success
                # Greedy eval success when evals run; the training batch's only when they never do.
                judged = metrics.get("eval/success_rate", None if config.trainer.eval_every else metrics["rollout/success_rate"])
                reached = target is not None and judged is not None and judged >= target
                asked = stop.requested or (on_step is not None and on_step(trainer, metrics))
                asked = bool(trainer.dist.any(asked))
                history.interrupted = asked and not reached and step < config.trainer.steps  # a signal or on_step, not early stop
                if asked or trainer.dist.broadcast(reached):  # every process stops together
                    trainer.save()
                    break
        if config.trainer.eval_before_after and main:
            after = trainer.evaluate()
            change = paired_change(before_returns, trainer.last_eval_returns)  # None after a resume: no before
            report = {"before": before, "after": after, "steps": trainer.state.step, "paired": change,
                      "returns": {"before": before_returns, "after": trainer.last_eval_returns}}
            (trainer.out / "eval_before_after.json").write_text(json.dumps(report, indent=2))
        if main:
            finish(config, trainer.out, before, after if config.trainer.eval_before_after else None, show_progress, change)
    finally:
        trainer.close()
    return history
