import torch

from pawkit.batching import Sequence, micro_batches


def test_masks_cover_exactly_response_and_wm_tokens_when_pad_equals_eos():
    eos = pad = 2  # SmolLM2-style tokenizer: pad == eos
    seqs = [
        Sequence(prompt_ids=[5, 6, 7], response_ids=[8, eos], wm_ids=[9, 9, 9]),
        Sequence(prompt_ids=[5], response_ids=[8, 8, 8, eos], wm_ids=[]),
    ]
    (mb,) = micro_batches(seqs, budget_tokens=1000, pad_id=pad, vocab=16)
    rows = mb.index.tolist()
    first, second = rows.index(0), rows.index(1)
    targets = mb.input_ids[:, 1:]
    assert targets[first][mb.action_mask[first]].tolist() == [8, eos]
    assert targets[first][mb.wm_mask[first]].tolist() == [9, 9, 9]
    assert targets[second][mb.action_mask[second]].tolist() == [8, 8, 8, eos]
    assert mb.wm_mask[second].sum() == 0
    assert not (mb.action_mask & mb.wm_mask).any()
    assert mb.attention_mask.sum(1)[first] == 8 and mb.attention_mask.sum(1)[second] == 5


def test_token_budget_splits_batches():
    seqs = [Sequence([1] * 10, [2] * 10, []) for _ in range(5)]
    batches = micro_batches(seqs, budget_tokens=45, pad_id=0, vocab=4)
    assert [len(b.index) for b in batches] == [2, 2, 1]
    assert sorted(torch.cat([b.index for b in batches]).tolist()) == [0, 1, 2, 3, 4]


def test_without_wm_the_sequences_stop_after_the_response():
    seqs = [Sequence([1, 1], [2], [3, 3, 3])]
    (mb,) = micro_batches(seqs, 100, 0, 4, with_wm=False)
    assert mb.input_ids.tolist() == [[1, 1, 2]]
    assert mb.wm_mask.sum() == 0


def test_restriction_rows_point_at_response_positions():
    seqs = [Sequence([1, 1], [2, 3], [], allowed=[[2, 5], [3]])]
    (mb,) = micro_batches(seqs, 100, 0, 8)
    rows, cols, allowed = mb.restrict
    assert rows.tolist() == [0, 0] and cols.tolist() == [1, 2]
    assert allowed[0].nonzero().flatten().tolist() == [2, 5]
    assert allowed[1].nonzero().flatten().tolist() == [3]
