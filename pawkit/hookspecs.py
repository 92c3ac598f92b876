"""The extension points of pawkit (pluggy hook specifications).

Every hook receives a ``register`` callable; a plugin calls it once per thing it provides,
with the object itself or a lazy ``"module:attr"`` string (imported on first use; pass
``description=`` then, since the docstring cannot be read without importing). Built-in adapters
and strategies use exactly these hooks, through the ``pawkit`` entry-point group, like any
third-party package would.

Arguments are opt-in (pluggy's rule): an implementation declares only the arguments it uses,
so a spec may gain arguments later without breaking installed plugins. An implementation whose
name matches no spec here (a typo) makes its plugin broken, listed by ``pawkit plugins``.
"""

from pluggy import HookimplMarker, HookspecMarker

hookspec = HookspecMarker("pawkit")
hookimpl = HookimplMarker("pawkit")


@hookspec
def register_envs(register):
    """register(name, factory, *, description="", check=None, config=None).

    ``factory(**options) -> pawkit.protocol.Env`` (or its ``"module:attr"`` string);
    ``check() -> str | None`` returns a short reason the env cannot run here (e.g. "needs
    java"), or None when it is ready; it runs for every ``pawkit envs``, so it must be cheap
    (``importlib.util.find_spec``, not an import). A check that declares a parameter
    ``options`` (opt-in) gets the env's resolved ``env.options`` dict ("data_dir not found: X").
    ``config``: the env's default run config, read when a config is loaded (never by
    ``pawkit envs``): a YAML path (a relative one is relative to the folder of the plugin's
    module), a dict, or a ``"module:attr"`` naming either. It sits above pawkit's defaults and
    below ``./configs/<env>.yaml``, ``--config`` and overrides (docs/writing-an-adapter.md).
    """


@hookspec
def register_selectors(register):
    """register(name, selector): ``selector(ctx) -> bool [len(ctx.rows)]``, which eligible
    transitions get a world-model loss (``ctx``: pawkit.strategies.StrategyContext; docs/hooks.md)."""


@hookspec
def register_wm_losses(register):
    """register(name, loss): ``loss(target_logprobs [B, T], mask [B, T], ctx) -> [B]``, the
    per-transition world-model loss from target-token log-probs (docs/hooks.md)."""


@hookspec
def register_balancers(register):
    """register(name, balancer): ``balancer(ctx) -> [len(ctx.groups)]``, the per-group weight
    λ_g ≥ 0 of the world-model loss (docs/hooks.md)."""


@hookspec
def register_wm_targets(register):
    """register(name, targets): ``targets(ctx) -> list[str | None]`` (one per row of
    ``ctx.rows``), the text each transition's world-model target is made of (``paw.delimiter``
    + text, tokenised as plain text); None = no target. ``next_observation`` (o_{t+1}, PaW) is
    the default; ``shuffled`` is the control that separates learning the world from "any extra
    language-model loss". A strategy whose targets are always the real next observations sets
    the attribute ``in_sequence = True``: only those run with ``rollout.context=trajectory``,
    whose targets are the observations already in the sequence (docs/hooks.md)."""


@hookspec
def register_advantage_estimators(register):
    """register(name, estimator): ``estimator(ctx) -> [len(ctx.rows)]``, per-step advantages
    from a rollout batch (GRPO, GiGPO, ...; docs/hooks.md)."""


@hookspec
def register_rollout_engines(register):
    """register(name, factory): ``factory(model, tokenizer, cfg: RolloutConfig) -> engine``, what
    samples the rollout's replies (``rollout.engine``; ``hf`` = Hugging Face ``generate``,
    pawkit.rollout.generate.Generator). An engine has ``tokenizer``, ``cfg``, ``encode(text) ->
    ids``, ``template_parts()`` and ``sample(prompt_ids_list, tries, temperature) -> Sampled``
    (token ids in and out, the sampled tokens' log-probs and entropies, the ``ActionTrie``
    restriction applied); optionally ``sync(model)``, called after every update that changed
    the weights, and ``close()``, called when the run ends (docs/hooks.md)."""


@hookspec
def register_commands(subparsers):
    """Add ``pawkit`` sub-commands: ``subparsers`` is an argparse sub-parser action.

    A command sets ``func=callable(args) -> int`` with ``parser.set_defaults``; the return
    value is the exit code.
    """
