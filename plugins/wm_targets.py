"""Built-in world-model targets: what each transition's WM loss predicts.

Each maps ``ctx`` (its ``rows``: one per transition of the batch) to one text or None per row;
the trainer tokenises ``paw.delimiter + text`` as the target (pawkit/train/paw.py). None means
no target (the episode's last step without a final observation): never eligible.
"""

from __future__ import annotations

import torch

from pawkit.strategies import StrategyContext


def next_observation(ctx: StrategyContext) -> list[str | None]:
    """o_{t+1}, the observation the action led to (PaW)."""
    return list(ctx.rows.next_observation_text)


next_observation.in_sequence = True  # the observations trajectory mode already has in its sequence


def shuffled(ctx: StrategyContext) -> list[str | None]:
    """Control: each transition gets another transition's o_{t+1} from the same batch (a batch is
    one env), as a seeded derangement of the rows that have one.

    The rows with a next observation are put in a random order π (``ctx.generator``); row π_i
    gets the text of row π_{i+1} (cyclically), so with two or more such rows no row keeps its
    own; a lone one does. Rows without a next observation keep None. The target is then the
    same kind of env text at the same length distribution, but unrelated to the action taken:
    if PaW's gain survives this, it was not world modelling (docs/paw.md).
    """
    texts = list(ctx.rows.next_observation_text)
    have = [i for i, t in enumerate(texts) if t is not None]
    order = [have[k] for k in torch.randperm(len(have), generator=ctx.generator).tolist()]
    out = list(texts)
    for k, i in enumerate(order):
        out[i] = texts[order[(k + 1) % len(order)]]
    return out
