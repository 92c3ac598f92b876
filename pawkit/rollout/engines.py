"""Rollout engines: what samples the replies, picked by ``rollout.engine`` from the
``register_rollout_engines`` registry (pawkit/hookspecs.py; ``hf`` = pawkit.rollout.generate.Generator).

The rollout talks to an engine only through ``sample(prompt_ids_list, tries, temperature) ->
Sampled`` (token ids in and out, with the sampled tokens' log-probs and entropies) and its
``tokenizer`` / ``cfg`` / ``encode`` / ``template_parts``. An engine that serves its own copy of
the weights (a vLLM server, say) gets ``sync(model)`` after every update that changed them, so a
rollout never samples from stale weights; ``close()`` when the run ends.
"""

from __future__ import annotations

from pawkit import plugins
from pawkit.protocol import UsageError

REQUIRED = ("sample", "encode", "template_parts", "tokenizer", "cfg")


def check_engine(name: str) -> None:
    """Before the model loads: ``rollout.engine`` names a registered engine (one line otherwise)."""
    try:
        plugins.registry("rollout_engine").get(name)
    except plugins.PluginError as exc:
        raise UsageError(f"rollout.engine: {exc}") from None


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
