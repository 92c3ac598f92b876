"""The update of one training step: the old/reference log-prob pass, then ``ppo_epochs`` times
the whole loss over micro-batches and one optimizer step.

The loss: PPO-clip on action tokens, low-variance KL to the reference policy, an optional
entropy bonus, and Σ_g λ_g · WM loss on the selected transitions' next-observation tokens, all
from the same forward pass. The token terms are token means over the action tokens of the
whole step, every process's together (the count is all-reduced; pawkit/train/distributed.py).

What the loss does not do, and why:

- With ``algorithm.ppo_epochs=1`` (every shipped config) the one forward pass runs on the
  parameters that produced the old log-probs, so the ratio π/π_old is exactly 1, the clip
  (``clip_low``/``clip_high``/dual ``clip_ratio_c``) never acts and ``loss/clip_fraction`` is 0:
  the PPO term is the plain policy gradient −A·∇log π, token-mean. The clip only matters from
  the second epoch on, where the policy has moved.
- No dropout in any pass of the update or the reference (pawkit/train/dropout.py): the RL
  passes score the policy that sampled (in eval mode), not a random sub-network.
- The KL reference is the policy the run started from, also after ``--resume``
  (``load_reference``); there is no moving reference.

``PolicyUpdate`` is mixed into ``Trainer`` and reads its ``cfg``, ``model``, ``tokenizer``,
``reference``, ``reference_adapter``, ``uses_lora``, ``optimizer``, ``dist`` and ``state``;
its metrics go into the step's ``Metrics`` (pawkit/train/metrics.py). The LR schedule is the
trainer's: one scheduler step per training step whose update ran, after all its epochs.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from pathlib import Path

import torch

from pawkit.config import Config
from pawkit.strategies import StepRows
from pawkit.train.aggregation import AGGREGATIONS
from pawkit.train.batching import TrainingSequence, forward, micro_batches
from pawkit.train.critic import explained_variance, value_loss
from pawkit.train.dropout import dropout_disabled
from pawkit.train.losses import low_var_kl, ppo_clip_loss
from pawkit.train.metrics import Metrics
from pawkit.train.paw import record_activity
from pawkit.train.models import load_model

REFERENCE_ADAPTER = "reference"


def load_reference(cfg: Config, model, uses_lora: bool):
    """The KL reference: the policy the run starts from, ``(reference model, adapter name)``.

    Built from ``cfg.model`` — the run's own start, also when ``--resume`` loads the policy from
    a later checkpoint, so a resumed run keeps its step-0 reference:

    - full weights: a frozen copy of that model (``(model, None)``);
    - LoRA on a base (a fresh adapter, which starts as the identity): the policy with its
      adapter disabled, no second copy (``(None, None)``);
    - LoRA from a saved adapter (``model.name=<run>/checkpoints/step-N/model``): that adapter
      again, loaded frozen next to the trained one as adapter ``"reference"``
      (``(None, "reference")``). The adapter-disabled base would be a different policy (the
      start of the run that trained the adapter). PEFT saves every adapter, so such a run's
      checkpoints also hold ``model/reference/``; loading ``model/`` reads only the trained one.

    ``(None, None)`` also when ``algorithm.kl_coef`` is 0 (no KL, no reference).
    """
    if cfg.algorithm.kl_coef == 0:
        return None, None
    if uses_lora:
        start = Path(cfg.model.name).expanduser()
        if (start / "adapter_config.json").exists():
            training = model.training
            with warnings.catch_warnings():  # PEFT reads a property that transformers 5 deprecated
                warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
                model.load_adapter(str(start), adapter_name=REFERENCE_ADAPTER, is_trainable=False)
            model.train(training)  # PEFT puts the whole model in eval mode for a frozen adapter
            return None, REFERENCE_ADAPTER
        return None, None
    reference, _ = load_model(cfg.model.model_copy(update={"gradient_checkpointing": False}))
    return reference.eval().requires_grad_(False), None


@contextlib.contextmanager
def _adapter_active(model, name: str):
    """``model`` (a PeftModel) runs with adapter ``name``; requires_grad flags are kept as they are
    (PEFT's ``set_adapter`` toggles them, and the optimizer holds the trained adapter's)."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    previous = model.active_adapter
    model.set_adapter(name, inference_mode=True)
    try:
        yield model
    finally:
        model.set_adapter(previous)
        for p, flag in flags:
            p.requires_grad_(flag)


class PolicyUpdate:
    reference_adapter: str | None = None
    critic = None  # PPO's value head (pawkit/train/critic.py) when the estimator needs values
    optimizer_steps = 0  # optimizer steps taken (not skipped) by this process: the trainer's LR schedule reads it
    tis_weights: list[torch.Tensor] | None = None  # per row [R_i]: truncated IS weights of the step (engines.logprob_check)

    def reuses_sampled_logprobs(self) -> bool:
        """Whether the sampler's recorded log-probs and entropies stand in for the old-log-prob
        pass (``algorithm.old_logprobs``): ``auto`` when they are the same numbers — one PPO epoch
        (no update between sampling and training), float32 weights and no bf16 autocast (the
        sampler and the training forward then agree to ≤1e-5)."""
        mode = self.cfg.algorithm.old_logprobs
        if mode == "auto":
            c = self.cfg
            return c.algorithm.ppo_epochs == 1 and c.model.dtype == "float32" and not c.trainer.bf16
        return mode == "sampled"

    @torch.no_grad()
    def old_logprobs(self, seqs: list[TrainingSequence], samples=None, with_values: bool = False):
        """Old and reference log-probs ``[R_i]`` per row, plus the mean action entropy ``[N]`` (nats).

        With ``samples`` (the rollout's, one per row) and ``reuses_sampled_logprobs``, the old
        log-probs and entropies are the sampler's and only the KL reference needs a pass (none
        when ``algorithm.kl_coef`` is 0); otherwise one pass scores policy and reference.
        ``with_values`` (a critic run): the policy pass always runs and also gives V_old(s_t)
        ``[N]`` (reward units), returned as a fourth element.
        """
        if with_values:
            values = torch.zeros(len(seqs))
            with dropout_disabled(self.model, self.reference, self.critic):
                return (*self._logprob_pass(seqs, policy=True, values=values), values)
        with dropout_disabled(self.model, self.reference):
            reuse = samples is not None and self.reuses_sampled_logprobs() and all(
                s.sampled_logprobs is not None and s.sampled_entropies is not None  # None: an engine without entropies (vLLM)
                and len(s.sampled_logprobs) == len(q.response_ids) for s, q in zip(samples, seqs)
            )
            if not reuse:
                return self._logprob_pass(seqs, policy=True)
            old = [torch.tensor(s.sampled_logprobs, dtype=torch.float32) for s in samples]
            entropy = torch.tensor([sum(s.sampled_entropies) / len(s.sampled_entropies) if s.sampled_entropies else 0.0
                                    for s in samples])
            _, ref, _ = self._logprob_pass(seqs, policy=False)
            return old, ref, entropy

    def _logprob_pass(self, seqs: list[TrainingSequence], policy: bool, values: torch.Tensor | None = None):
        """No-grad scores over the action tokens: the policy's (if ``policy``) and the KL
        reference's (if ``kl_coef`` > 0); rows not scored hold empty tensors / zero entropy.
        ``values`` ``[N]`` (with ``policy``): filled in place with the critic's V(s_t)."""
        temp = self.cfg.rollout.temperature
        budget, pad, vocab = self.cfg.trainer.micro_batch_tokens, self.tokenizer.pad_token_id, len(self.tokenizer)
        old: list[torch.Tensor] = [torch.empty(0)] * len(seqs)
        ref: list[torch.Tensor] = [torch.empty(0)] * len(seqs)
        entropy = torch.zeros(len(seqs))
        if not policy and self.cfg.algorithm.kl_coef == 0:
            return old, ref, entropy
        for mb in micro_batches(seqs, budget, pad, vocab, with_wm=False):
            out = ref_out = None
            if policy:
                with self._autocast():
                    out = forward(self.model, mb, temp, top_p=self.cfg.rollout.top_p,
                                  value_head=self.critic if values is not None else None)
                if values is not None:
                    values[mb.index] = out.values.float().cpu()
            if self.cfg.algorithm.kl_coef > 0:
                with self._autocast(), self._reference() as reference:
                    ref_out = forward(reference, mb, temp, top_p=self.cfg.rollout.top_p)
            for b, i in enumerate(mb.index.tolist()):
                mask = mb.action_mask[b]
                if out is not None:
                    old[i] = out.logprobs[b][mask].cpu()
                    entropy[i] = out.entropy[b][mask].mean().cpu() if mask.any() else 0.0
                if ref_out is not None:
                    ref[i] = ref_out.logprobs[b][mask].cpu()
        return old, ref, entropy

    @contextlib.contextmanager
    def _reference(self):
        """The reference policy of ``load_reference``, for one no-grad pass."""
        if self.reference_adapter is not None:
            with _adapter_active(self.model, self.reference_adapter):
                yield self.model
        elif self.uses_lora:
            with self.model.disable_adapter():
                yield self.model
        else:
            yield self.reference

    def _autocast(self):
        if self.cfg.trainer.bf16:
            return torch.autocast(device_type=next(self.model.parameters()).device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def update(self, seqs, advantages, old, ref, weights, metrics: Metrics | None = None, selected: int | None = None,
               rows: StepRows | None = None, rl: torch.Tensor | None = None, value_targets=None) -> Metrics:
        """``ppo_epochs`` passes of loss + backward + one optimizer step; returns ``metrics``.

        ``rl`` (bool ``[N]``, default all): the rows in the PPO, entropy and KL terms; the
        others (a filtered group kept as WM data, pawkit/train/filtering.py) only get the WM term.
        ``value_targets`` (with a critic): ``(V_old [N], R [N])``; the value loss
        (pawkit/train/critic.py) × ``algorithm.value_coef`` is a mean over the RL rows of every
        process (their count all-reduced), logged as ``loss/value_loss``, ``loss/value_clip_fraction``
        (fractions of rows), ``loss/explained_variance`` (of V_old, once per step) and
        ``rollout/value_mean``.

        Collective under data parallelism: every process calls it once per step, one with no
        samples with empty ``seqs`` (it adds zero gradients to the others' and takes the same
        optimizer steps). The PPO, entropy and KL terms are aggregated as
        ``algorithm.loss_aggregation`` says (pawkit/train/aggregation.py) over the RL rows of
        ALL processes: a micro-batch adds its weighted token sums / the global denominator
        (action tokens or rows, one all-reduce); the WM term is Σ_rows λ_g · WM loss, a sum, so
        summing the processes' gradients gives exactly the one-process gradient on all rows.

        ``loss/pg_loss`` is the PPO term as aggregated (the token mean under ``token_mean``),
        added per micro-batch with its share of the denominator as the weight; the per-token
        diagnostics (``clip_fraction``, ``entropy``, ``kl``, ``paw/wm_token_accuracy``,
        ``paw/wm_target_prob``) are added with the micro-batch's token count as the weight:
        token means over the batch whatever the aggregation. Both are averaged over epochs.
        ``paw/wm_loss_weighted`` (the step's WM loss term) is added once per epoch with weight
        1: its mean over epochs. ``paw/wm_loss_raw`` = the summed raw WM loss of the selected
        transitions / ``selected`` (their number, default the rows with weight > 0) is added
        once per epoch with weight ``selected``: the mean over epochs, and over processes the
        mean over all selected transitions.
        """
        metrics = Metrics() if metrics is None else metrics
        if selected is None:
            selected = int((weights > 0).sum())
        rl = torch.ones(len(seqs), dtype=torch.bool) if rl is None else rl
        # One all-reduce: the denominator of the RL terms counts every process's RL rows.
        agg = AGGREGATIONS[self.cfg.algorithm.loss_aggregation]
        denominator = max(self.dist.total(agg.count(torch.tensor([len(s.response_ids) * bool(r) for s, r in zip(seqs, rl)]))), 1)
        critic = None
        if self.critic is not None:
            v_old, returns = value_targets if value_targets is not None else (torch.zeros(len(seqs)), torch.zeros(len(seqs)))
            critic = (v_old, returns, max(self.dist.total(int(rl.sum())), 1))
            if rl.any():
                metrics.add("rollout/value_mean", float(v_old[rl].mean()), int(rl.sum()))
                if (ev := explained_variance(v_old[rl], returns[rl])) is not None:
                    metrics.add("loss/explained_variance", ev, int(rl.sum()))
        with dropout_disabled(self.model, self.critic):
            for epoch in range(self.cfg.algorithm.ppo_epochs):
                self._epoch(seqs, advantages, old, ref, weights, metrics, selected, denominator, rows, rl, critic)
                self._step_optimizer(metrics, epoch)
        return metrics

    def _epoch(self, seqs, advantages, old, ref, weights, metrics: Metrics, selected: int, denominator: float,
               step_rows: StepRows | None = None, rl: torch.Tensor | None = None, critic=None) -> None:
        """Loss and backward over every micro-batch: the gradient of one optimizer step.

        The PPO term is ``ppo_clip_loss`` on advantages scaled by the row weights w_r of the
        aggregation: PPO-clip (and its dual clip) is positively homogeneous in A, so that is
        Σ_t w_r·ℓ_{r,t} exactly, and the clip fraction is unchanged (w_r > 0)."""
        c = self.cfg
        alg, temp = c.algorithm, c.rollout.temperature
        agg, max_len = AGGREGATIONS[alg.loss_aggregation], c.rollout.max_new_tokens
        rl = torch.ones(len(seqs), dtype=torch.bool) if rl is None else rl
        wm_loss_fn = self.strategies.wm_loss(self.state.step + 1, metrics, step_rows) if c.paw.enabled else None
        self.optimizer.zero_grad(set_to_none=True)
        wm_weighted = wm_raw = 0.0
        for mb in micro_batches(seqs, c.trainer.micro_batch_tokens, self.tokenizer.pad_token_id, len(self.tokenizer)):
            with self._autocast():
                out = forward(self.model, mb, temp, top_p=self.cfg.rollout.top_p, value_head=self.critic)
            device = out.logprobs.device
            rows = mb.index.tolist()
            action_mask = mb.action_mask.to(device)
            mask = action_mask & rl[mb.index].to(device).unsqueeze(1)  # the RL rows' action tokens
            tokens = mask.sum().item()
            share = agg.count(mask.sum(-1))  # this micro-batch's part of the denominator
            row_w = agg.weights(mask, max_len).to(device).unsqueeze(1)
            old_lp = _scatter(action_mask, [old[i] for i in rows], device)
            adv = advantages[mb.index].to(device).unsqueeze(1).expand_as(mask)
            if self.tis_weights is not None:  # rollout.vllm.tis_cap: w_t·ℓ_t, as ppo_clip_loss is positively homogeneous in A
                adv = adv * _scatter(action_mask, [self.tis_weights[i] for i in rows], device)
            pg, clipfrac = ppo_clip_loss(out.logprobs, old_lp, adv * row_w, mask, alg.clip_low, alg.clip_high, alg.clip_ratio_c)
            pg_sum = pg * tokens  # Σ_r w_r Σ_t ℓ_{r,t}: ppo_clip_loss is a token mean over mask
            loss = pg_sum / denominator
            metrics.add("loss/pg_loss", pg_sum.item() / max(share, 1), share)
            metrics.add("loss/clip_fraction", float(clipfrac), tokens)
            metrics.add("loss/entropy", (out.entropy * mask).sum().item() / max(tokens, 1), tokens)
            loss = loss - alg.entropy_coef * agg.contribution(out.entropy, mask, denominator, max_len)
            if alg.kl_coef > 0:
                ref_lp = _scatter(action_mask, [ref[i] for i in rows], device)
                kl = low_var_kl(out.logprobs, ref_lp)
                metrics.add("loss/kl", (kl * mask).sum().item() / max(tokens, 1), tokens)
                loss = loss + alg.kl_coef * agg.contribution(kl, mask, denominator, max_len)
            if critic is not None:
                loss = loss + alg.value_coef * self._value_term(out.values, mb.index, rl, critic, metrics)
            if wm_loss_fn is not None:
                wm_mask = mb.wm_mask.to(device)
                per_row = wm_loss_fn(out.logprobs, wm_mask, rows)
                w = weights[mb.index].to(device)
                wm = (per_row * w).sum()
                loss = loss + wm
                wm_weighted += wm.item()
                chosen = w > 0
                if chosen.any():
                    sel_mask = wm_mask & chosen.unsqueeze(1)
                    wm_tokens = sel_mask.sum().item()
                    wm_raw += per_row[chosen].sum().item()
                    per_token = max(wm_tokens, 1)
                    metrics.add("paw/wm_token_accuracy", out.wm_correct[sel_mask].sum().item() / per_token, wm_tokens)
                    metrics.add("paw/wm_target_prob", out.logprobs[sel_mask].exp().sum().item() / per_token, wm_tokens)
                    record_activity(out.logprobs[sel_mask].detach().exp(), c.paw.rho, metrics)
            loss.backward()
        if wm_loss_fn is not None:
            metrics.add("paw/wm_loss_weighted", wm_weighted)
            metrics.add("paw/wm_loss_raw", wm_raw / max(selected, 1), selected)

    def _value_term(self, values: torch.Tensor, index: torch.Tensor, rl: torch.Tensor, critic, metrics: Metrics) -> torch.Tensor:
        """Σ over this micro-batch's RL rows of the clipped value loss / the step's RL row count."""
        v_old, returns, count = critic
        keep = rl[index].to(values.device)
        picked = index[rl[index]]
        if not keep.any():
            return values.sum() * 0.0
        per_row, clipped = value_loss(values[keep], v_old[picked].to(values.device), returns[picked].to(values.device),
                                      self.cfg.algorithm.value_clip)
        n = int(keep.sum())
        metrics.add("loss/value_loss", per_row.detach().mean().item(), n)
        metrics.add("loss/value_clip_fraction", clipped.float().mean().item(), n)
        return per_row.sum() / count

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        """What the optimizer steps: the policy's trainable parameters, then the critic's (if any)."""
        params = [p for p in self.model.parameters() if p.requires_grad]
        return params + (list(self.critic.parameters()) if self.critic is not None else [])

    def _step_optimizer(self, metrics: Metrics, epoch: int = 0) -> None:
        """Sum gradients over processes, clip, step (or skip a non-finite update).

        ``loss/grad_norm`` (the global norm before clipping, as ``clip_grad_norm_`` returns it)
        and ``loss/skipped_update`` are means over the step's epochs (the latter: the fraction
        of its optimizer steps skipped); with ``ppo_epochs`` > 1 each epoch's norm is also kept
        as ``loss/grad_norm_epoch{k}``, k = 1, 2, … The LR scheduler is not stepped here: it
        advances once per training step whose update ran (``Trainer.train_step``), so every
        epoch of a step uses that step's lr.
        """
        params = self.trainable_parameters()
        self.dist.sum_gradients(params)
        norm = torch.nn.utils.clip_grad_norm_(params, self.cfg.trainer.grad_clip)
        skipped = not torch.isfinite(norm)
        if skipped:
            self.optimizer.zero_grad(set_to_none=True)
            self.state.nonfinite_skips += 1
            if self.dist.is_main:
                print(f"warning: step {self.state.step + 1}: non-finite loss or gradient, update skipped", file=sys.stderr)
        else:
            self.optimizer.step()
            self.optimizer_steps += 1
        value = float("nan") if skipped else float(norm)
        metrics.add("loss/grad_norm", value)
        metrics.add("loss/skipped_update", float(skipped))
        if self.cfg.algorithm.ppo_epochs > 1:
            metrics.set(f"loss/grad_norm_epoch{epoch + 1}", value)


def _scatter(mask: torch.Tensor, values: list[torch.Tensor], device) -> torch.Tensor:
    out = torch.zeros(mask.shape, device=device)
    for b, v in enumerate(values):
        out[b][mask[b]] = v.to(device)
    return out
