"""Training sequences built from rollout ids, token-budget micro-batches, and the one forward pass.

A sequence is ``prompt ; response ; wm_target`` (the last part only with PaW). Masks are
built from lengths, never from pad ids (SmolLM2's pad == eos). Token positions, for a prompt
of P tokens, a response (action a_t) of R tokens and a WM target (delimiter + o_{t+1}) of W::

    input ids    | p_0 … p_{P-1} | r_0 … r_{R-1} | w_0 … w_{W-1} | pad …
    position     | 0   …   P-1   | P   … P+R-1   | P+R … P+R+W-1 |
    logits at position t predict token t+1, so over the L-1 predicted positions:
    action_mask  = [P-1, P+R-1)   → log π(r_k | p, r_<k): PPO / KL / entropy read these
    wm_mask      = [P+R-1, P+R+W-1) → log p(w_k | p, r, w_<k): the world-model loss reads these
    everything else (prompt predicting prompt, padding) is never projected onto the vocabulary

Causal attention means the WM tokens after the response cannot change the action
log-probs: the RL and WM losses come from ONE forward pass (PaW, ../shared/reference/paw.md).

Trajectory mode (``rollout.context=trajectory``, pawkit/rollout/trajectory.py): a row is a
whole episode — its steps' replies and next-observation messages are spans of one sequence,
each step a ``TrainingSequence`` pointing into the shared ``context``. The forward runs once per
episode; its per-position outputs are then gathered into the same per-step layout as above
(``Layout``: step s's R action cells, then its W target cells), so every loss, aggregation and
metric reads one row per step in both modes.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch

from pawkit.rollout.generate import sampling_logits
from pawkit.train.losses import restrict_logits, token_logprobs, token_logprobs_and_entropy


@dataclass
class TrainingSequence:
    prompt_ids: list[int]
    response_ids: list[int]
    wm_ids: list[int]
    allowed: list[list[int]] | None = None
    # trajectory mode: the episode's sequence (shared by its steps; prompt_ids is then empty),
    # response_ids == context[start : start + R] and wm_ids == context[wm_start : wm_start + W]
    context: list[int] | None = None
    start: int = 0
    wm_start: int = 0

    def __len__(self) -> int:
        """Tokens the forward pass needs for this step: in trajectory mode up to its last target."""
        if self.context is not None:
            return self.wm_start + len(self.wm_ids) if self.wm_ids else self.start + len(self.response_ids)
        return len(self.prompt_ids) + len(self.response_ids) + len(self.wm_ids)


@dataclass
class Layout:
    """Trajectory mode: where each step's cells sit in the episode rows of a micro-batch."""

    action: torch.Tensor  # [B, L-1] bool: positions predicting an action token (any step)
    wm: torch.Tensor  # [B, L-1] bool: positions predicting a WM target token (any step)
    rows: torch.Tensor  # [S, W] long: episode row of each step cell
    cols: torch.Tensor  # [S, W] long: its predicted position
    cells: torch.Tensor  # [S, W] bool: the cell exists (action or target)

    def view(self, out: "ForwardOut") -> "ForwardOut":
        """``out`` (episode layout ``[B, L-1]``) as one row per step ``[S, W]`` (differentiable)."""
        pick = lambda t: t[self.rows.to(t.device), self.cols.to(t.device)].masked_fill(~self.cells.to(t.device), 0)  # noqa: E731
        return ForwardOut(pick(out.logprobs), pick(out.entropy), pick(out.wm_correct), out.values)


@dataclass
class MicroBatch:
    index: torch.Tensor  # rows of the full batch (steps)
    input_ids: torch.Tensor  # [B, L]
    attention_mask: torch.Tensor
    action_mask: torch.Tensor  # [S, W] over predicted positions (step mode: S = B, W = L-1)
    wm_mask: torch.Tensor  # [S, W]
    restrict: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None  # (rows, cols, allowed bool [K, V]) in [B, L-1]
    layout: Layout | None = None  # trajectory mode: episode rows → step rows
    # (row, position) [S] each: the input position whose logits predict each step's first action
    # token — where a critic reads V(s_t) (pawkit/train/critic.py)
    value_at: tuple[torch.Tensor, torch.Tensor] | None = None


def micro_batches(seqs: list[TrainingSequence], budget_tokens: int, pad_id: int, vocab: int, with_wm: bool = True) -> list[MicroBatch]:
    """Group sequences of similar length so that rows × longest ≤ ``budget_tokens``. In
    trajectory mode a row is an episode (all of its steps in ``seqs``), never split."""
    if seqs and seqs[0].context is not None:
        return _episode_batches(seqs, budget_tokens, pad_id, vocab, with_wm)
    order = sorted(range(len(seqs)), key=lambda i: _length(seqs[i], with_wm))
    groups: list[list[int]] = []
    for i in order:
        longest = _length(seqs[i], with_wm)
        if groups and (len(groups[-1]) + 1) * longest <= budget_tokens:
            groups[-1].append(i)
        else:
            groups.append([i])
    return [_collate([seqs[i] for i in g], torch.tensor(g), pad_id, vocab, with_wm) for g in groups]


def _length(seq: TrainingSequence, with_wm: bool) -> int:
    if seq.context is not None and not with_wm:
        return seq.start + len(seq.response_ids)
    return len(seq) if with_wm else len(seq.prompt_ids) + len(seq.response_ids)


def _episode_batches(seqs: list[TrainingSequence], budget_tokens: int, pad_id: int, vocab: int, with_wm: bool) -> list[MicroBatch]:
    episodes: dict[int, list[int]] = {}  # id(context) -> its steps, in batch order
    for i, s in enumerate(seqs):
        if s.context is None:
            raise ValueError("a batch mixes step-mode and trajectory-mode sequences")
        episodes.setdefault(id(s.context), []).append(i)
    rows = list(episodes.values())
    end = [max(_length(seqs[i], with_wm) for i in r) for r in rows]
    groups: list[list[int]] = []
    for r in sorted(range(len(rows)), key=lambda r: end[r]):
        if groups and (len(groups[-1]) + 1) * end[r] <= budget_tokens:
            groups[-1].append(r)
        else:
            groups.append([r])
    return [_collate_episodes(seqs, [rows[r] for r in g], [end[r] for r in g], pad_id, vocab, with_wm) for g in groups]


def _collate_episodes(seqs, rows: list[list[int]], ends: list[int], pad_id: int, vocab: int, with_wm: bool) -> MicroBatch:
    width = max(ends)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    action = torch.zeros((len(rows), width - 1), dtype=torch.bool)
    wm = torch.zeros((len(rows), width - 1), dtype=torch.bool)
    steps = [i for r in rows for i in r]
    cell_width = max(len(seqs[i].response_ids) + (len(seqs[i].wm_ids) if with_wm else 0) for i in steps)
    at_row = torch.zeros((len(steps), cell_width), dtype=torch.long)
    at_col = torch.zeros((len(steps), cell_width), dtype=torch.long)
    step_action = torch.zeros((len(steps), cell_width), dtype=torch.bool)
    step_wm = torch.zeros((len(steps), cell_width), dtype=torch.bool)
    restrict_rows, restrict_cols, allowed_rows = [], [], []
    value_rows, value_cols = [], []
    k = 0
    for b, (r, end) in enumerate(zip(rows, ends)):
        ids[b, :end] = torch.tensor(seqs[r[0]].context[:end])
        attention[b, :end] = 1
        for i in r:
            s = seqs[i]
            n, w = len(s.response_ids), (len(s.wm_ids) if with_wm else 0)
            cols = list(range(s.start - 1, s.start - 1 + n)) + list(range(s.wm_start - 1, s.wm_start - 1 + w))
            at_row[k, : n + w] = b
            at_col[k, : n + w] = torch.tensor(cols, dtype=torch.long)
            step_action[k, :n] = True
            step_wm[k, n : n + w] = True
            value_rows.append(b)
            value_cols.append(s.start - 1)
            action[b, s.start - 1 : s.start - 1 + n] = True
            wm[b, s.wm_start - 1 : s.wm_start - 1 + w] = True
            for j, ok in enumerate(s.allowed or []):
                if ok:
                    mask = torch.zeros(vocab, dtype=torch.bool)
                    mask[ok] = True
                    restrict_rows.append(b)
                    restrict_cols.append(s.start - 1 + j)
                    allowed_rows.append(mask)
            k += 1
    restrict = (torch.tensor(restrict_rows), torch.tensor(restrict_cols), torch.stack(allowed_rows)) if restrict_rows else None
    layout = Layout(action, wm, at_row, at_col, step_action | step_wm)
    value_at = (torch.tensor(value_rows), torch.tensor(value_cols))
    return MicroBatch(torch.tensor(steps), ids, attention, step_action, step_wm, restrict, layout, value_at)


def _collate(seqs: list[TrainingSequence], index: torch.Tensor, pad_id: int, vocab: int, with_wm: bool) -> MicroBatch:
    width = max(_length(s, with_wm) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(seqs), width), dtype=torch.long)
    action = torch.zeros((len(seqs), width - 1), dtype=torch.bool)
    wm = torch.zeros((len(seqs), width - 1), dtype=torch.bool)
    rows, cols, allowed_rows = [], [], []
    for b, s in enumerate(seqs):
        tokens = s.prompt_ids + s.response_ids + (s.wm_ids if with_wm else [])
        ids[b, : len(tokens)] = torch.tensor(tokens)
        attention[b, : len(tokens)] = 1
        p, r = len(s.prompt_ids), len(s.response_ids)
        action[b, p - 1 : p - 1 + r] = True  # logits at t-1 predict token t
        if with_wm and s.wm_ids:
            wm[b, p + r - 1 : p + r - 1 + len(s.wm_ids)] = True
        for k, ok in enumerate(s.allowed or []):
            if ok:
                mask = torch.zeros(vocab, dtype=torch.bool)
                mask[ok] = True
                rows.append(b)
                cols.append(p - 1 + k)
                allowed_rows.append(mask)
    restrict = (torch.tensor(rows), torch.tensor(cols), torch.stack(allowed_rows)) if rows else None
    value_at = (torch.arange(len(seqs)), torch.tensor([len(s.prompt_ids) - 1 for s in seqs]))
    return MicroBatch(index, ids, attention, action, wm, restrict, value_at=value_at)


@dataclass
class ForwardOut:
    logprobs: torch.Tensor  # [B, L-1] log-prob of each next token
    entropy: torch.Tensor  # [B, L-1], at action positions only (0 elsewhere: WM targets need none)
    wm_correct: torch.Tensor  # [B, L-1] argmax == target (only meaningful under wm_mask)
    values: torch.Tensor | None = None  # [S] V(s_t) per step, with a value head (else None)


def forward(model, mb: MicroBatch, temperature: float = 1.0, chunk_size: int = 1024, top_p: float = 1.0,
            value_head=None) -> ForwardOut:
    """ONE forward pass → log-probs for action tokens and WM targets alike, entropies at actions.

    Action positions get exactly the sampler's transform — the constrained restriction, then
    ``pawkit.rollout.generate.sampling_logits`` (temperature, top-p) — so the PPO ratio compares
    like with like; WM targets are scored as the raw model (temperature 1, full vocabulary). Only the
    positions a loss reads are projected onto the vocabulary: prompts are most of every
    sequence, and their logits (and log-softmax, and its backward) were pure waste. With WM
    targets, their positions cost only a log-sum-exp (``token_logprobs``): the entropy and its
    backward run over the action positions alone, and the transforms edit the action rows of
    the logits in place (the LM head's backward does not need its output), never a copy of all.

    ``value_head`` (pawkit/train/critic.py): also V(s_t) per step ``[S]`` from the same pass's
    final hidden state at ``mb.value_at`` (``ForwardOut.values``).
    """
    device = next(model.parameters()).device
    action_mask, wm_mask = (mb.layout.action, mb.layout.wm) if mb.layout is not None else (mb.action_mask, mb.wm_mask)
    read = (action_mask | wm_mask).to(device)  # [B, L-1]: position t predicts token t+1
    logits, hidden = _read_logits(model, mb.input_ids.to(device), mb.attention_mask.to(device), read,
                                  hidden=value_head is not None)  # [N, V]; [B, L, H] or None
    targets = mb.input_ids[:, 1:].to(device)[read]
    acting = action_mask.to(device)[read]  # read positions that predict an action token
    if mb.restrict is not None:
        rows, cols, allowed = (t.to(device) for t in mb.restrict)
        flat = torch.cumsum(read.flatten(), 0).view_as(read) - 1  # index of each read position in `logits`
        at = flat[rows, cols]
        logits[at] = restrict_logits(logits[at], allowed)
    if temperature != 1.0 or top_p < 1.0:
        logits[acting] = sampling_logits(logits[acting], temperature, top_p)
    wm = wm_mask.to(device)[read]
    if wm.any():
        logprobs = token_logprobs(logits, targets, chunk_size)
        act_rows = acting.nonzero().flatten()
        _, act_entropy = token_logprobs_and_entropy(logits[act_rows][None], targets[act_rows][None], chunk_size)
        entropy = logprobs.new_zeros(logprobs.shape).index_put((act_rows,), act_entropy[0])
    else:
        lp, ent = token_logprobs_and_entropy(logits[None], targets[None], chunk_size)
        logprobs, entropy = lp[0], ent[0]
    correct = torch.zeros_like(wm)
    if wm.any():
        correct[wm] = logits.detach().argmax(-1)[wm] == targets[wm]
    values = None
    if value_head is not None:
        rows_v, cols_v = (t.to(device) for t in mb.value_at)
        values = value_head(hidden[rows_v, cols_v])
    out = ForwardOut(_unflatten(logprobs, read), _unflatten(entropy, read), _unflatten(correct, read), values)
    return mb.layout.view(out) if mb.layout is not None else out


def _unflatten(values: torch.Tensor, read: torch.Tensor) -> torch.Tensor:
    """Back to the [B, L-1] layout; positions no loss reads hold zeros."""
    full = values.new_zeros(read.shape)
    full[read] = values
    return full


def _read_logits(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, read: torch.Tensor, hidden: bool = False):
    """Logits at the ``read`` positions only, flattened row-major to ``[N, V]``, and with
    ``hidden`` the final hidden states ``[B, L, H]`` (after the last norm; else None).

    transformers' ``logits_to_keep`` with a boolean ``[B, L]`` mask skips the LM head (and
    its backward) everywhere else; a model without it gets its full logits indexed instead.
    """
    keep = torch.cat([read, read.new_zeros((read.shape[0], 1))], dim=1)  # the last position predicts nothing
    extra = {"output_hidden_states": True} if hidden else {}
    if accepts_logits_to_keep(model):
        try:
            out = model(input_ids=input_ids, attention_mask=attention_mask, logits_to_keep=keep, **extra)
            if out.logits.dim() == 2 and out.logits.shape[0] == int(keep.sum()):
                return out.logits, _last_hidden(out, hidden)
        except IndexError:  # a forward that takes only an int or 1-D logits_to_keep
            pass
        _TAKES_MASK[type(_base(model))] = False
    out = model(input_ids=input_ids, attention_mask=attention_mask, **extra)
    return out.logits[keep], _last_hidden(out, hidden)


def _last_hidden(out, wanted: bool):
    if not wanted:
        return None
    states = getattr(out, "hidden_states", None)
    if not states:
        raise ValueError("the model returned no hidden_states with output_hidden_states=True; a value head needs them")
    return states[-1]


_TAKES_MASK: dict[type, bool] = {}  # model class -> its forward takes a boolean logits_to_keep


def _base(model):
    return model.get_base_model() if hasattr(model, "get_base_model") else model  # peft


def accepts_logits_to_keep(model) -> bool:
    """Whether ``model`` takes a boolean ``logits_to_keep`` mask (HF causal LMs do; custom ones may
    not): its forward's signature says so until a call proves otherwise."""
    cls = type(_base(model))
    if cls not in _TAKES_MASK:
        _TAKES_MASK[cls] = "logits_to_keep" in inspect.signature(cls.forward).parameters
    return _TAKES_MASK[cls]
