"""What a strategy plugin receives and returns: ``StrategyContext``, ``StepRows``, ``GroupRows``.

Every strategy (selector, WM loss, balancer, advantage estimator) is looked up by name in the
registries of ``pawkit.plugins`` and called with ONE typed context (docs/strategies.md):

=====================  =========================================  ===========================
hook                   call                                        returns
=====================  =========================================  ===========================
selector               ``selector(ctx)``                           bool mask ``[N]``, N = ``len(ctx.rows)``
balancer               ``balancer(ctx)``                           float λ_g ``[G]``, G = ``len(ctx.groups)``, finite, ≥ 0
wm_loss                ``wm_loss(target_logprobs, mask, ctx)``     float loss per row ``[B]``
advantage_estimator    ``estimator(ctx)``                          float advantage per row ``[N]``, finite
=====================  =========================================  ===========================

The trainer checks each result at the boundary (``pawkit.train.strategy_calls``): a wrong type,
shape, dtype, a non-finite or negative λ is one error naming the plugin and the strategy.

A strategy is a function, or a class: a class is instantiated once per run (``cls()``) and its
instance is called; an instance with ``state_dict()`` / ``load_state_dict(state)`` is saved in
every checkpoint and restored on ``--resume``. A function or class may declare ``Options``, a
pydantic model: its fields are set as ``paw.options.<key>`` (``algorithm.options.<key>`` for an
advantage estimator), validated before the model loads, listed by ``pawkit plugins --explain``,
and passed as ``ctx.options``. ``ctx.record(name, value)`` adds ``<ns>/<strategy>/<name>`` to the
step's metrics (ns = ``paw`` or ``rollout``).

Strategies written for the old positional signatures (``selector(entropies, cfg, generator)``,
``balancer(group_mean_returns, max_return, cfg)``, ``estimator(rows, cfg)``) are still called
that way, with a DeprecationWarning, until pawkit 0.3; a WM loss that reads ``cfg.rho`` from its
third argument keeps working the same way (``ctx.rho`` forwards to ``ctx.cfg.rho``, warning).

No torch at import time: a plugin package can type-check against this module cheaply.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

if TYPE_CHECKING:
    import torch


@dataclass
class StepRows:
    """One row per environment step (a transition) of a rollout batch: verl-agent's layout, in
    which a step is a sample. Rows of a trajectory appear in step order.

    Every field is a list with one entry per row. ``reward`` is the env reward of that step
    (reward units); ``episode_return`` the sum over its trajectory; ``anchor`` the observation
    the action was taken from as the env keys it (GiGPO's state key); ``invalid`` the parser's
    verdict (penalised by ``penalty`` in the scores); ``action_text`` the command sent to the env;
    ``observation_text`` / ``next_observation_text`` the env text before and after the step
    (``None`` after the last step of an episode: nothing to predict); ``prompt_tokens`` /
    ``action_tokens`` / ``target_tokens`` token counts of the prompt, the sampled reply and the
    WM target (``paw.delimiter + o_{t+1}`` after ``paw.max_obs_tokens``; 0 = no WM target);
    ``action_entropy`` the mean entropy of the reply's tokens under the sampling distribution
    (nats; empty before it is computed); ``values`` the critic's V(s_t) of the state the action
    was taken from (reward units; filled only for an estimator that declares ``needs_values``,
    e.g. ``ppo``, by the value head of pawkit/train/critic.py). Older code that builds a StepRows
    with only the first eight fields still works: the others stay empty.
    """

    group_ids: list[str]
    traj_ids: list[str]
    step_index: list[int]
    reward: list[float]
    episode_return: list[float]
    anchor: list[str]
    invalid: list[bool]
    penalty: float = 0.1
    action_text: list[str] = field(default_factory=list)
    observation_text: list[str] = field(default_factory=list)
    next_observation_text: list[str | None] = field(default_factory=list)
    prompt_tokens: list[int] = field(default_factory=list)
    action_tokens: list[int] = field(default_factory=list)
    target_tokens: list[int] = field(default_factory=list)
    action_entropy: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.group_ids)

    def scores(self) -> list[float]:
        """Each row's score: its episode return minus ``penalty`` when its action was invalid
        (that row only) — what the built-in advantage estimators normalise and what group
        filtering calls equal (reward units)."""
        return [ret - self.penalty * invalid for ret, invalid in zip(self.episode_return, self.invalid)]

    def subset(self, index: Sequence[int]) -> "StepRows":
        """The rows at ``index`` (in that order); empty columns stay empty."""
        picked = {
            f.name: ([getattr(self, f.name)[i] for i in index] if getattr(self, f.name) else [])
            for f in fields(self) if f.name != "penalty"
        }
        return StepRows(**picked, penalty=self.penalty)


@dataclass
class GroupRows:
    """One row per rollout group (the G episodes of one task), in order of first appearance.

    ``mean_return`` is the mean episode return over the group's episodes that did not end in an
    env error (reward units); ``episodes`` their number; ``success_rate`` their success fraction.
    """

    group_ids: list[str]
    mean_return: list[float]
    episodes: list[int]
    success_rate: list[float]

    def __len__(self) -> int:
        return len(self.group_ids)


@dataclass
class StrategyContext:
    """What one strategy call sees (see the module docstring for who gets which rows).

    ``step``: the training step being computed (1-based, counted across resumes). ``cfg``: the
    ``PawConfig`` (selector, WM loss, balancer) or ``AlgorithmConfig`` (advantage estimator).
    ``options``: the strategy's validated ``Options`` instance, or None when it declares none.
    ``rows``: selector — the eligible transitions (those with a WM target), the mask is over
    them; balancer and advantage estimator — every transition of this process's batch; WM loss
    — the rows of the micro-batch, in the order of ``target_logprobs``. ``groups``: this
    process's rollout groups. ``max_return``: the env's maximum episode return. ``generator``:
    the run's seeded, checkpointed ``torch.Generator`` — the only randomness a strategy may use,
    so runs are reproducible and resumable.
    """

    cfg: Any
    rows: StepRows | None = None
    groups: GroupRows | None = None
    step: int = 0
    max_return: float = 1.0
    generator: "torch.Generator | None" = None
    options: Any = None
    name: str = ""
    kind: str = ""
    recorder: Callable[[str, float], None] | None = field(default=None, repr=False)

    def record(self, name: str, value: float) -> None:
        """Add a scalar to this step's metrics as ``<ns>/<strategy>/<name>`` (mean over calls
        within the step and over processes)."""
        if self.recorder is not None:
            self.recorder(name, float(value))

    @property
    def entropies(self) -> "torch.Tensor":
        """``rows.action_entropy`` as a float tensor ``[N]`` (nats)."""
        import torch

        return torch.tensor(self.rows.action_entropy if self.rows is not None else [], dtype=torch.float32)

    @property
    def group_mean_returns(self) -> "torch.Tensor":
        """``groups.mean_return`` as a float tensor ``[G]`` (reward units)."""
        import torch

        return torch.tensor(self.groups.mean_return if self.groups is not None else [], dtype=torch.float32)

    def __getattr__(self, key: str) -> Any:
        # Only reached for a missing attribute: a strategy written for the old signatures reads
        # config fields (``cfg.rho``) from what is now the context.
        cfg = self.__dict__.get("cfg")
        if key in getattr(type(cfg), "model_fields", {}):
            warnings.warn(
                f"{self.kind or 'strategy'} {self.name!r} reads {key!r} from its context: use ctx.cfg.{key} "
                "(the old config argument is now a StrategyContext; removed in pawkit 0.3)",
                DeprecationWarning, stacklevel=2,
            )
            return getattr(cfg, key)
        raise AttributeError(f"StrategyContext has no attribute {key!r}")


class Selector(Protocol):
    """Which eligible transitions get a world-model loss: a bool mask ``[len(ctx.rows)]``.
    Ties must be broken deterministically (lower index first)."""

    def __call__(self, ctx: StrategyContext) -> "torch.Tensor": ...


class WorldModelLoss(Protocol):
    """Per-transition loss from the log-probs of the next-observation target tokens.

    ``target_logprobs`` and ``mask`` are ``[B, T]`` (log-probs at temperature 1; positions
    outside ``mask`` may hold ``-inf``); returns ``[B]`` (a row with no target tokens gives 0).
    """

    def __call__(self, target_logprobs: "torch.Tensor", mask: "torch.Tensor", ctx: StrategyContext) -> "torch.Tensor": ...


class Balancer(Protocol):
    """Weight λ_g ≥ 0 of each rollout group's world-model loss: ``[len(ctx.groups)]``."""

    def __call__(self, ctx: StrategyContext) -> "torch.Tensor": ...


class AdvantageEstimator(Protocol):
    """Scalar advantage per row ``[len(ctx.rows)]`` (broadcast over the row's reply tokens)."""

    def __call__(self, ctx: StrategyContext) -> "torch.Tensor": ...


# config section of each hook's options: paw.options.<key> / algorithm.options.<key>
OPTIONS_SECTION = {"selector": "paw", "wm_loss": "paw", "balancer": "paw", "advantage_estimator": "algorithm"}


def options_model(obj: Any, what: str) -> Any:
    """The pydantic model class a strategy declares as ``Options``, or None.

    Raises ``pawkit.protocol.UsageError`` naming ``what`` when ``Options`` is not a pydantic
    ``BaseModel`` class.
    """
    model = getattr(obj, "Options", None)
    if model is None:
        return None
    from pydantic import BaseModel

    from pawkit.protocol import UsageError

    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise UsageError(f"{what}: its Options must be a pydantic BaseModel class, got {model!r}")
    return model


def describe_options(obj: Any, kind: str, what: str) -> list[dict[str, Any]]:
    """``[{"key", "type", "default", "description"}]`` of a strategy's options, for
    ``pawkit plugins --explain`` (``key`` is the full config key, e.g. ``paw.options.half_life``)."""
    model = options_model(obj, what)
    if model is None:
        return []
    out = []
    for name, info in model.model_fields.items():
        annotation = getattr(info.annotation, "__name__", str(info.annotation))
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        out.append({"key": f"{OPTIONS_SECTION[kind]}.options.{name}", "type": annotation, "default": default,
                    "required": info.is_required(), "description": info.description or ""})
    return out


def gae(rows: StepRows, gamma: float, lam: float) -> tuple[list[float], list[float]]:
    """Generalised advantage estimation over each trajectory's steps (Schulman et al. 2016, Eq. 16).

    Per row, in step order within its trajectory (``group_ids``, ``traj_ids``, sorted by
    ``step_index``): r_t = ``reward`` − ``penalty`` on an invalid action; δ_t = r_t + γ·V(s_{t+1})
    − V(s_t); A_t = Σ_k (γλ)^k δ_{t+k}; the value target R_t = A_t + V(s_t). V = ``rows.values``.
    A trajectory's last row bootstraps with V = 0: after an env-done end nothing follows, and
    after a turn-limit or context end the episode is over too — the env pays nothing more, so 0
    is the return that happened (the policy does not see the turn count: a critic may alias such
    states; no time feature is added).

    Returns ``(advantages, returns)``, one float per row each (reward units). Raises ValueError
    when ``rows.values`` does not have one entry per row.
    """
    n = len(rows)
    if len(rows.values) != n:
        raise ValueError(f"gae needs one value per row: rows.values has {len(rows.values)} for {n} rows "
                         "(only an estimator that declares needs_values = True gets them)")
    advantages, returns = [0.0] * n, [0.0] * n
    trajectories: dict[tuple[str, str], list[int]] = {}
    for i, key in enumerate(zip(rows.group_ids, rows.traj_ids)):
        trajectories.setdefault(key, []).append(i)
    for idx in trajectories.values():
        running, next_value = 0.0, 0.0
        for i in sorted(idx, key=lambda i: rows.step_index[i], reverse=True):
            reward = rows.reward[i] - rows.penalty * bool(rows.invalid[i])
            delta = reward + gamma * next_value - rows.values[i]
            running = delta + gamma * lam * running
            advantages[i], returns[i] = running, running + rows.values[i]
            next_value = rows.values[i]
    return advantages, returns


def keep_count(n: int, keep_ratio: float) -> int:
    """⌈κ·N⌉, the number of transitions the built-in selectors keep."""
    return min(n, math.ceil(keep_ratio * n - 1e-9))
