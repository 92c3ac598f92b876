"""Rollout engines: what samples the replies, picked by ``rollout.engine`` from the
``register_rollout_engines`` registry (pawkit/hookspecs.py; ``hf`` = pawkit.rollout.generate.Generator).

The rollout talks to an engine only through ``sample(prompt_ids_list, tries, temperature) ->
Sampled`` (token ids in and out, with the sampled tokens' log-probs and entropies) and its
``tokenizer`` / ``cfg`` / ``encode`` / ``template_parts``. An engine that serves its own copy of
the weights (a vLLM server, say) gets ``sync(model)`` after every update that changed them, so a
rollout never samples from stale weights; ``close()`` when the run ends.
"""

from __future__ import annotations

import torch

from pawkit import plugins
from pawkit.protocol import UsageError

REQUIRED = ("sample", "encode", "template_parts", "tokenizer", "cfg")


def check_engine(name: str, cfg=None) -> None:
    """Before the model loads: ``rollout.engine`` names a registered engine (one line otherwise),
    and, given the ``RolloutConfig``, the engine's own ``preflight(cfg)`` passes (the vLLM
    engine: vLLM is installed)."""
    try:
        entry = plugins.registry("rollout_engine").get(name)
    except plugins.PluginError as exc:
        raise UsageError(f"rollout.engine: {exc}") from None
    preflight = getattr(entry.obj, "preflight", None)
    if cfg is not None and callable(preflight):
        preflight(cfg)


def build_engine(model, tokenizer, cfg):
    """The ``cfg.engine`` engine for ``model`` (its factory called as ``factory(model, tokenizer,
    cfg)``); an engine missing a member of the contract is one ``UsageError`` line naming it."""
    entry = plugins.registry("rollout_engine").get(cfg.engine)
    engine = entry.obj(model, tokenizer, cfg)
    missing = [m for m in REQUIRED if not hasattr(engine, m)]
    if missing:
        raise UsageError(f"rollout engine {cfg.engine!r} (plugin {entry.plugin!r}) has no {', '.join(missing)}; "
                         "an engine needs sample, encode, template_parts, tokenizer and cfg (docs/hooks.md)")
    return engine


def sync_engine(engine, model) -> None:
    """After an update that changed the weights: hand them to an engine that keeps its own copy."""
    sync = getattr(engine, "sync", None)
    if callable(sync):
        sync(model)


def close_engine(engine) -> None:
    close = getattr(engine, "close", None)
    if callable(close):
        close()


def logprob_check(engine, old: list[torch.Tensor], samples, tis_cap: float | None, metrics) -> list[torch.Tensor] | None:
    """For an engine whose log-probs come from other kernels than the trainer's
    (``exact_logprobs`` False, e.g. vLLM): log ``rollout/engine_logprob_diff_max`` and ``_mean``,
    the max and mean |Δ log p| (nats) between the trainer's old log-probs ``old`` (``[R_i]`` per
    row, its own forward) and the engine's on the sampled tokens, and return the truncated
    importance-sampling weights ``min(exp(old - engine), tis_cap)`` per token (``[R_i]`` per
    row; verl's and prime-rl's correction), or None when ``tis_cap`` is None. The HF engine is
    exact: None, nothing logged. A row whose engine log-probs do not line up gets weight 1."""
    if getattr(engine, "exact_logprobs", True) or not samples:
        return None
    diffs, weights = [], []
    for lp, sample in zip(old, samples):
        served = sample.sampled_logprobs
        if served is None or len(served) != len(lp):
            weights.append(torch.ones(len(lp)))
            continue
        gap = lp.float() - torch.tensor(served, dtype=torch.float32)
        diffs.append(gap.abs())
        weights.append(gap.exp().clamp(max=tis_cap) if tis_cap is not None else torch.ones(len(lp)))
    if diffs:
        every = torch.cat(diffs)
        if every.numel():
            metrics.set("rollout/engine_logprob_diff_max", float(every.max()))
            metrics.set("rollout/engine_logprob_diff_mean", float(every.mean()))
    return weights if tis_cap is not None else None
