"""PPO's learned critic: a turn-level value head on the policy's trunk and its clipped value loss.

The critic of ``algorithm.name=ppo`` (any estimator that declares ``needs_values = True``):

- **Where it reads.** V(s_t) is a linear map of the policy's final hidden state (after the last
  norm: ``hidden_states[-1]`` of a transformers causal LM) at the position whose logits predict
  step t's FIRST action token — the state right before the agent acts, with everything it was
  shown. One value per environment step (turn-level, as ArCHer and verl-agent's multi-turn PPO
  score turns): every action token of step t then carries the same GAE advantage A_t, which
  makes ``ppo`` an ordinary per-row advantage estimator. Step mode reads position P−1 of the
  step's row (P prompt tokens); trajectory mode the cell before the step's reply in its
  episode's row (``MicroBatch.value_at``, pawkit/train/batching.py) — one code path.
- **What it shares.** The value head (``torch.nn.Linear(hidden, 1)``, zero-initialised, so V = 0
  and the first step's advantages are plain discounted returns-to-go) reads the trunk the
  policy uses, in the same forward pass; its value loss back-propagates into the trunk (with
  LoRA: into the adapter) weighted by ``algorithm.value_coef``. A separate value model is not
  built.
- **What it learns.** The GAE returns R_t = A_t + V_old(s_t) (``pawkit.strategies.gae``, from the
  un-whitened advantages), with PPO2's clipped value loss (Schulman et al. 2017; the openai
  baselines ``ppo2`` form), a mean over the RL rows of the step (its own normalisation, not the
  PPO term's token aggregation).
- **Where it lives.** Its ``state_dict`` goes into every checkpoint's ``trainer_state.pt`` under
  ``"critic"`` and is restored on ``--resume``; ``pawkit eval`` never needs it.
"""

from __future__ import annotations

import torch


class ValueHead(torch.nn.Module):
    """V(s) = w·h + b from a final hidden state ``h`` ``[..., hidden]`` → ``[...]`` (reward units)."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.linear = torch.nn.Linear(hidden_size, 1)
        torch.nn.init.zeros_(self.linear.weight)
        torch.nn.init.zeros_(self.linear.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.linear(hidden.to(self.linear.weight.dtype)).squeeze(-1)


def build_critic(needs_values: bool, model) -> ValueHead | None:
    """A value head on ``model``'s device, or None when the run's estimator needs no values.

    Raises ValueError when the model's config has no ``hidden_size``."""
    if not needs_values:
        return None
    hidden = getattr(model.config, "hidden_size", None)
    if hidden is None:
        raise ValueError(f"{type(model).__name__}: its config has no hidden_size, so no value head can read it")
    param = next(model.parameters())
    return ValueHead(int(hidden)).to(device=param.device, dtype=torch.float32)


def value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, clip: float):
    """PPO2's clipped value loss per row and whether its clipped branch was taken.

    ``values`` V ``[N]`` (with grad), ``old_values`` V_old ``[N]`` (the no-grad pass before the
    update), ``returns`` R ``[N]``: ℓ = ½·max((V − R)², (V_old + clip(V − V_old, −ε, ε) − R)²)
    with ε = ``clip``; ``clip`` = 0 gives the unclipped ½·(V − R)². Returns ``(loss [N],
    clipped [N] bool)``, ``clipped`` = the clipped term is the larger one (it then carries no
    gradient: V left the trust region in the direction that worsens the error).
    """
    unclipped = (values - returns) ** 2
    if clip <= 0:
        return 0.5 * unclipped, torch.zeros_like(unclipped, dtype=torch.bool)
    clipped_v = old_values + (values - old_values).clamp(-clip, clip)
    clipped = (clipped_v - returns) ** 2
    return 0.5 * torch.maximum(unclipped, clipped), clipped > unclipped


def explained_variance(values: torch.Tensor, returns: torch.Tensor) -> float | None:
    """1 − Var(R − V) / Var(R) over the rows (1 = perfect, 0 = no better than the mean, < 0 = worse);
    None (undefined) for fewer than two rows or constant returns."""
    if values.numel() < 2:
        return None
    var = returns.var(unbiased=False)
    if float(var) == 0.0:
        return None
    return float(1 - (returns - values).var(unbiased=False) / var)
