"""Training sequences built from rollout ids, token-budget micro-batches, and the one forward pass.

A sequence is ``prompt ; response ; wm_target`` (the last part only with PaW). Masks are
built from lengths, never from pad ids (SmolLM2's pad == eos).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pawkit.losses import restrict_logits, token_logprobs_and_entropy


@dataclass
class Sequence:
    prompt_ids: list[int]
    response_ids: list[int]
    wm_ids: list[int]
    allowed: list[list[int]] | None = None

    def __len__(self) -> int:
        return len(self.prompt_ids) + len(self.response_ids) + len(self.wm_ids)


@dataclass
class MicroBatch:
    index: torch.Tensor  # rows of the full batch
    input_ids: torch.Tensor  # [B, L]
    attention_mask: torch.Tensor
    action_mask: torch.Tensor  # [B, L-1] over predicted positions
    wm_mask: torch.Tensor  # [B, L-1]
    restrict: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None  # (rows, cols, allowed bool [K, V])


def micro_batches(seqs: list[Sequence], budget_tokens: int, pad_id: int, vocab: int, with_wm: bool = True) -> list[MicroBatch]:
    """Group sequences of similar length so that rows × longest ≤ ``budget_tokens``."""
    order = sorted(range(len(seqs)), key=lambda i: _length(seqs[i], with_wm))
    groups: list[list[int]] = []
    for i in order:
        longest = _length(seqs[i], with_wm)
        if groups and (len(groups[-1]) + 1) * longest <= budget_tokens:
            groups[-1].append(i)
        else:
            groups.append([i])
    return [_collate([seqs[i] for i in g], torch.tensor(g), pad_id, vocab, with_wm) for g in groups]


def _length(seq: Sequence, with_wm: bool) -> int:
    return len(seq) if with_wm else len(seq.prompt_ids) + len(seq.response_ids)


def _collate(seqs: list[Sequence], index: torch.Tensor, pad_id: int, vocab: int, with_wm: bool) -> MicroBatch:
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
    return MicroBatch(index, ids, attention, action, wm, restrict)


@dataclass
class ForwardOut:
    logprobs: torch.Tensor  # [B, L-1] log-prob of each next token
    entropy: torch.Tensor  # [B, L-1]
    wm_correct: torch.Tensor  # [B, L-1] argmax == target (only meaningful under wm_mask)


def forward(model, mb: MicroBatch, temperature: float = 1.0, chunk_size: int = 1024) -> ForwardOut:
    """ONE forward pass → log-probs and entropies for action tokens and WM targets alike.

    Action positions use the sampling temperature (and the constrained restriction) so the
    PPO ratio compares like with like; WM targets are scored at temperature 1.
    """
    device = next(model.parameters()).device
    logits = model(input_ids=mb.input_ids.to(device), attention_mask=mb.attention_mask.to(device)).logits[:, :-1]
    if temperature != 1.0:
        scale = torch.where(mb.action_mask.to(device), 1.0 / temperature, 1.0).unsqueeze(-1)
        logits = logits * scale.to(logits.dtype)
    if mb.restrict is not None:
        rows, cols, allowed = (t.to(device) for t in mb.restrict)
        logits = logits.clone()
        logits[rows, cols] = restrict_logits(logits[rows, cols], allowed)
    targets = mb.input_ids[:, 1:].to(device)
    logprobs, entropy = token_logprobs_and_entropy(logits.float(), targets, chunk_size)
    if mb.wm_mask.any():
        wm_correct = torch.zeros_like(mb.wm_mask, device=device)
        rows, cols = mb.wm_mask.to(device).nonzero(as_tuple=True)
        wm_correct[rows, cols] = logits[rows, cols].argmax(-1) == targets[rows, cols]
    else:
        wm_correct = torch.zeros_like(mb.wm_mask, device=device)
    return ForwardOut(logprobs, entropy, wm_correct)
