"""The strategies of one run: resolved by name, options validated, instantiated once, called
with a ``StrategyContext``, every result checked at the boundary, state saved in checkpoints.

This is the one place the trainer talks to strategy plugins (the contract is in
pawkit/strategies.py and docs/strategies.md). A result that breaks the contract — not a tensor,
the wrong shape or dtype, a NaN, a negative λ — is one ``StrategyError`` line naming the hook,
the strategy and its plugin, raised at the step that produced it (exit 2 from the CLI; the run's
complete checkpoints are kept).
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import torch
from pydantic import BaseModel, ValidationError

from pawkit import plugins
from pawkit.config import Config, ConfigError
from pawkit.strategies import GroupRows, StepRows, StrategyContext, options_model
from pawkit.train.metrics import Metrics

# metrics namespace of each hook's ``ctx.record`` values
NAMESPACE = {"selector": "paw", "wm_loss": "paw", "balancer": "paw", "wm_targets": "paw", "advantage_estimator": "rollout"}
# positional arguments of the pre-0.2 signatures (selector(entropies, cfg, generator), ...)
LEGACY_ARITY = {"selector": 3, "balancer": 3, "advantage_estimator": 2}


class StrategyError(plugins.PluginError):
    """A strategy returned something outside its contract (one line naming it)."""


@dataclass
class Bound:
    """One strategy of this run: the callable, its validated options, how to call it."""

    kind: str
    name: str
    plugin: str
    call: Callable[..., Any]
    options: BaseModel | None
    legacy: bool

    @property
    def what(self) -> str:
        return f"{self.kind} {self.name!r} (plugin {self.plugin!r})"

    def error(self, problem: str) -> StrategyError:
        return StrategyError(f"{self.what} {problem}")


def _positional_arity(fn: Callable[..., Any]) -> int | None:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(p.kind in kinds and p.default is p.empty for p in params)


def _options_of(section: str, given: dict[str, Any], entries: list[tuple[str, str, Any]]) -> list[BaseModel | None]:
    """Validate ``<section>.options`` against the Options models of ``entries`` (kind, name, obj):
    each strategy gets the keys its model declares; a key no strategy declares is refused."""
    problems, out, declared = [], [], {}
    for kind, name, obj in entries:
        model = options_model(obj, f"{kind} {name!r}")
        if model is None:
            out.append(None)
            continue
        mine = {k: v for k, v in given.items() if k in model.model_fields}
        declared.update({k: f"{kind} {name!r}" for k in model.model_fields})
        try:
            out.append(model.model_validate(mine))
        except ValidationError as err:
            out.append(None)
            for e in err.errors():
                key = ".".join(str(p) for p in e["loc"])
                problems.append(f"invalid value for '{section}.options.{key}': {e.get('input')!r} ({e['msg']}; an option of {kind} {name!r})")
    for key in given:
        if key not in declared:
            takes = ", ".join(f"{k} ({w})" for k, w in declared.items()) or "none"
            problems.append(f"unknown option '{section}.options.{key}': the run's strategies take {takes}")
    if problems:
        raise ConfigError("\n".join(problems))
    return out


class RunStrategies:
    """The run's advantage estimator and, with ``paw.enabled``, its selector, WM loss and balancer.

    Built before the model loads, so an unknown name or a bad option is one line, in seconds.
    """

    def __init__(self, config: Config):
        self.cfg = config
        wanted = [("advantage_estimator", config.algorithm.name)]
        if config.paw.enabled:
            wanted += [("selector", config.paw.selector), ("wm_loss", config.paw.wm_loss), ("balancer", config.paw.balancer),
                       ("wm_targets", config.paw.targets)]
        entries = [(kind, name, plugins.registry(kind).get(name)) for kind, name in wanted]
        objects = [(kind, name, entry.obj) for kind, name, entry in entries]
        options = _options_of("algorithm", config.algorithm.options, objects[:1]) + (
            _options_of("paw", config.paw.options, objects[1:]) if config.paw.enabled else []
        )
        self.bound: dict[str, Bound] = {}
        for (kind, name, entry), (_, _, obj), opts in zip(entries, objects, options):
            call = obj() if inspect.isclass(obj) else obj  # a class: one instance per run (it may keep state)
            legacy = kind in LEGACY_ARITY and _positional_arity(call) == LEGACY_ARITY[kind]
            if legacy:
                warnings.warn(
                    f"{kind} {name!r} (plugin {entry.plugin!r}) uses the old positional signature; take one "
                    "StrategyContext instead (docs/strategies.md); the old form is removed in pawkit 0.3",
                    DeprecationWarning, stacklevel=2,
                )
            self.bound[kind] = Bound(kind, name, entry.plugin, call, opts, legacy)
        targets = self.bound.get("wm_targets")
        if targets is not None and config.rollout.context == "trajectory" and not getattr(targets.call, "in_sequence", False):
            raise ConfigError(f"paw.targets={targets.name!r} replaces the WM targets, but with rollout.context=trajectory they are "
                              "the observations already in the sequence; use rollout.context=step for it (a strategy whose "
                              "targets are exactly those observations declares in_sequence = True)")

    @property
    def needs_values(self) -> bool:
        """The advantage estimator declares ``needs_values = True`` (e.g. ``ppo``): the trainer then
        builds a value head and fills ``StepRows.values`` (pawkit/train/critic.py)."""
        return bool(getattr(self.bound["advantage_estimator"].call, "needs_values", False))

    # ------------------------------------------------------------------ contexts
    def context(self, kind: str, metrics: Metrics | None, **fields: Any) -> StrategyContext:
        b = self.bound[kind]
        prefix = f"{NAMESPACE[kind]}/{b.name}/"
        recorder = (lambda key, value: metrics.add(prefix + key, value)) if metrics is not None else None
        cfg = self.cfg.algorithm if kind == "advantage_estimator" else self.cfg.paw
        return StrategyContext(cfg=cfg, options=b.options, name=b.name, kind=kind, recorder=recorder, **fields)

    # ------------------------------------------------------------------ calls
    def advantages(self, rows: StepRows, groups: GroupRows, step: int, max_return: float, generator, metrics=None) -> torch.Tensor:
        """Advantage per row ``[N]`` (float32, finite)."""
        b = self.bound["advantage_estimator"]
        ctx = self.context(b.kind, metrics, rows=rows, groups=groups, step=step, max_return=max_return, generator=generator)
        out = b.call(rows, ctx.cfg) if b.legacy else b.call(ctx)
        out = _vector(b, out, len(rows), "one advantage per transition")
        if not out.is_floating_point():
            raise b.error(f"returned dtype {out.dtype}; advantages are floats")
        _finite(b, out, "advantage", "transition")
        return out.float()

    def select(self, rows: StepRows, groups: GroupRows, step: int, max_return: float, generator, metrics=None) -> torch.Tensor:
        """Bool mask ``[len(rows)]`` over the eligible transitions ``rows``."""
        b = self.bound["selector"]
        ctx = self.context(b.kind, metrics, rows=rows, groups=groups, step=step, max_return=max_return, generator=generator)
        out = b.call(ctx.entropies, ctx.cfg, generator) if b.legacy else b.call(ctx)
        out = _vector(b, out, len(rows), "a bool mask over the eligible transitions")
        if out.dtype != torch.bool:
            raise b.error(f"returned dtype {out.dtype}; a selector returns a torch.bool mask")
        return out.cpu()

    def balance(self, rows: StepRows, groups: GroupRows, step: int, max_return: float, generator, metrics=None) -> torch.Tensor:
        """λ_g ``[len(groups)]`` (float32, finite, ≥ 0)."""
        b = self.bound["balancer"]
        ctx = self.context(b.kind, metrics, rows=rows, groups=groups, step=step, max_return=max_return, generator=generator)
        out = b.call(ctx.group_mean_returns, max_return, ctx.cfg) if b.legacy else b.call(ctx)
        out = _vector(b, out, len(groups), "one λ per rollout group")
        if not out.is_floating_point():
            raise b.error(f"returned dtype {out.dtype}; λ is a float per group")
        _finite(b, out, "λ", "group")
        if (out < 0).any():
            g = int((out < 0).nonzero()[0])
            raise b.error(
                f"returned λ = {float(out[g]):.4g} < 0 for group {g} (mean return {groups.mean_return[g]:.4g}, "
                f"max_return {max_return}); λ must be ≥ 0 — a negative weight would train the model to mispredict"
            )
        return out.float().cpu()

    def targets(self, rows: StepRows, step: int, generator, metrics=None) -> list[str | None]:
        """The WM target text of each row (``str`` or None), checked."""
        b = self.bound["wm_targets"]
        out = b.call(self.context(b.kind, metrics, rows=rows, step=step, generator=generator))
        if not isinstance(out, (list, tuple)) or len(out) != len(rows):
            got = f"{type(out).__name__} of length {len(out)}" if hasattr(out, "__len__") else type(out).__name__
            raise b.error(f"returned {got}; expected a list with one text (or None) per transition ({len(rows)})")
        bad = next((i for i, t in enumerate(out) if t is not None and not isinstance(t, str)), None)
        if bad is not None:
            raise b.error(f"returned {type(out[bad]).__name__} for row {bad}; a target is a str or None")
        return list(out)

    def wm_loss(self, step: int, metrics: Metrics | None, rows: StepRows | None) -> Callable[..., torch.Tensor]:
        """``loss(target_logprobs [B, T], mask [B, T], index [B]) -> [B]`` for one update step;
        ``index`` picks the micro-batch's rows out of ``rows``."""
        b = self.bound["wm_loss"]

        def loss(target_logprobs: torch.Tensor, mask: torch.Tensor, index: list[int]) -> torch.Tensor:
            ctx = self.context(b.kind, metrics, rows=rows.subset(index) if rows is not None else None, step=step)
            out = _vector(b, b.call(target_logprobs, mask, ctx), target_logprobs.shape[0], "one loss per row")
            bad = ~torch.isfinite(out.detach())
            if bad.any():
                inputs_ok = torch.isfinite(target_logprobs.detach().masked_fill(~mask.bool(), 0.0)).all(dim=1)
                culprit = (bad & inputs_ok).nonzero()
                if len(culprit):  # finite log-probs in, NaN out: the loss's fault (else the model's: skipped update)
                    raise b.error(f"returned a non-finite loss ({float(out[culprit[0]])}) for row {int(culprit[0])} from finite log-probs")
            return out

        return loss

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """``{"<kind>/<name>": state}`` of every strategy instance that has ``state_dict``."""
        return {f"{b.kind}/{b.name}": b.call.state_dict() for b in self.bound.values() if hasattr(b.call, "state_dict")}

    def load_state_dict(self, state: dict[str, Any]) -> list[str]:
        """Restore what ``state_dict`` saved; returns the stateful strategies the checkpoint had
        no state for (they start fresh)."""
        missing = []
        for b in self.bound.values():
            if hasattr(b.call, "load_state_dict"):
                key = f"{b.kind}/{b.name}"
                if key in state:
                    b.call.load_state_dict(state[key])
                else:
                    missing.append(key)
        return missing


def _vector(b: Bound, out: Any, n: int, what: str) -> torch.Tensor:
    if not isinstance(out, torch.Tensor):
        raise b.error(f"returned {type(out).__name__}, not a torch.Tensor of shape [{n}] ({what})")
    if tuple(out.shape) != (n,):
        raise b.error(f"returned shape {list(out.shape)}; expected [{n}] ({what})")
    return out


def _finite(b: Bound, out: torch.Tensor, what: str, unit: str) -> None:
    bad = (~torch.isfinite(out.detach())).nonzero()
    if len(bad):
        i = int(bad[0])
        raise b.error(f"returned a non-finite {what} ({float(out[i])}) for {unit} {i}")
