"""Loss aggregation (``algorithm.loss_aggregation``): how per-token loss terms become one number.

Every mode is one formula with a per-row weight ``w_r`` and a denominator ``D``:

    term = Σ_r w_r · Σ_t ℓ_{r,t} / D

over the RL rows r (one row = one step sample's action tokens) and their action tokens t.
``D`` is counted over the RL rows of the whole step — every micro-batch and every process
(``PolicyUpdate.update`` all-reduces it once) — so a micro-batch adds
``Σ_{r in it} w_r Σ_t ℓ_{r,t} / D`` and the sum over micro-batches and processes is the
formula on all rows, whatever ``trainer.micro_batch_tokens`` and the process split
(tests/test_algorithms.py). With n_r the row's action tokens and L = ``rollout.max_new_tokens``:

| mode | w_r | D | what |
|---|---|---|---|
| ``token_mean`` | 1 | Σ_r n_r (action tokens) | DAPO's token-level mean; every token weighs the same (default) |
| ``seq_mean_token_mean`` | 1 / n_r | rows | mean over rows of each row's token mean (the original GRPO loss) |
| ``seq_mean_token_sum_norm`` | 1 / L | rows | Dr. GRPO: each row's token SUM over a constant L, mean over rows |

``seq_mean_token_sum_norm`` follows verl's ``loss_agg_mode="seq-mean-token-sum-norm"``
(``verl/trainer/ppo/core_algos.py``, ``agg_loss``: ``torch.sum(seq_losses) / loss_scale_factor``
with the max response length as that factor, "equivalent to Dr. GRPO's approach of using
MAX_TOKENS") and Dr. GRPO's own ``masked_mean(..., max_len)``: a fixed normaliser, so a long
reply is not down-weighted per token as ``seq_mean_token_mean`` does. verl divides one
micro-batch's sum over its sequences by L and leaves the batch mean to its gradient-accumulation
scale; here the mean over rows is explicit and global (D = rows of the step), which is the same
objective up to that constant and does not depend on the micro-batching.

The PPO policy term and, as in verl's actor (``agg_loss`` for ``entropy`` and ``kld`` with the
same ``loss_agg_mode``), the entropy bonus and the KL penalty follow the mode. PaW's WM term
does not: it keeps its own normalisation (Σ_rows λ_g / (groups · selected in g) · the row's
token-mean WM loss, docs/paw.md). A row with no RL action tokens (e.g. one of a filtered group
kept only as world-model data) counts in no denominator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import torch


@dataclass(frozen=True)
class Aggregation:
    """One mode: ``row_weight(n [B], L) -> w [B]`` and the ``unit`` that ``D`` counts."""

    row_weight: Callable[[torch.Tensor, int], torch.Tensor]
    unit: Literal["tokens", "rows"]

    def count(self, row_tokens: torch.Tensor) -> float:
        """This slice's share of ``D``: its action tokens, or its rows with ≥ 1 action token."""
        n = row_tokens.to(torch.float64)
        return float(n.sum() if self.unit == "tokens" else (n > 0).sum())

    def weights(self, mask: torch.Tensor, max_tokens: int) -> torch.Tensor:
        """``w_r`` of each row of ``mask`` ``[B, T]`` (bool, the RL action tokens), float ``[B]``."""
        return self.row_weight(mask.sum(-1).to(torch.float32), max_tokens)

    def contribution(self, values: torch.Tensor, mask: torch.Tensor, denominator: float, max_tokens: int) -> torch.Tensor:
        """``Σ_r w_r Σ_t values·mask / denominator`` for per-token ``values`` ``[B, T]``: a micro-batch's
        share of the step's term, given the step's global ``denominator`` (differentiable)."""
        w = self.weights(mask, max_tokens).to(values.device)
        return (values * mask.to(values.dtype) * w.unsqueeze(-1)).sum() / denominator

    def value(self, values: torch.Tensor, mask: torch.Tensor, max_tokens: int) -> torch.Tensor:
        """The term on ``values`` ``[B, T]`` alone (``D`` counted from ``mask``); 0 with no tokens."""
        return self.contribution(values, mask, max(self.count(mask.sum(-1)), 1.0), max_tokens)


def _one(n: torch.Tensor, max_tokens: int) -> torch.Tensor:
    return torch.ones_like(n)


def _per_row_mean(n: torch.Tensor, max_tokens: int) -> torch.Tensor:
    return 1.0 / n.clamp(min=1.0)


def _constant_length(n: torch.Tensor, max_tokens: int) -> torch.Tensor:
    return torch.full_like(n, 1.0 / max_tokens)


# The modes, by the name algorithm.loss_aggregation takes (its Literal lists the same names: a test checks).
AGGREGATIONS: dict[str, Aggregation] = {
    "token_mean": Aggregation(_one, "tokens"),
    "seq_mean_token_mean": Aggregation(_per_row_mean, "rows"),
    "seq_mean_token_sum_norm": Aggregation(_constant_length, "rows"),
}
