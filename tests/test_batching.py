import pytest
import torch

from pawkit.train.batching import TrainingSequence, micro_batches


def test_masks_cover_exactly_response_and_wm_tokens_when_pad_equals_eos():
    eos = pad = 2  # SmolLM2-style tokenizer: pad == eos
    seqs = [
        TrainingSequence(prompt_ids=[5, 6, 7], response_ids=[8, eos], wm_ids=[9, 9, 9]),
        TrainingSequence(prompt_ids=[5], response_ids=[8, 8, 8, eos], wm_ids=[]),
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
    seqs = [TrainingSequence([1] * 10, [2] * 10, []) for _ in range(5)]
    batches = micro_batches(seqs, budget_tokens=45, pad_id=0, vocab=4)
    assert [len(b.index) for b in batches] == [2, 2, 1]
    assert sorted(torch.cat([b.index for b in batches]).tolist()) == [0, 1, 2, 3, 4]


def test_without_wm_the_sequences_stop_after_the_response():
    seqs = [TrainingSequence([1, 1], [2], [3, 3, 3])]
    (mb,) = micro_batches(seqs, 100, 0, 4, with_wm=False)
    assert mb.input_ids.tolist() == [[1, 1, 2]]
    assert mb.wm_mask.sum() == 0


def test_restriction_rows_point_at_response_positions():
    seqs = [TrainingSequence([1, 1], [2, 3], [], allowed=[[2, 5], [3]])]
    (mb,) = micro_batches(seqs, 100, 0, 8)
    rows, cols, allowed = mb.restrict
    assert rows.tolist() == [0, 0] and cols.tolist() == [1, 2]
    assert allowed[0].nonzero().flatten().tolist() == [2, 5]
    assert allowed[1].nonzero().flatten().tolist() == [3]


def _tiny_lm(vocab: int = 12):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=vocab, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64)
    return LlamaForCausalLM(config).eval()


def _reference(model, mb, temperature):
    """The same quantities from logits over every position, computed the plain way."""
    logits = model(input_ids=mb.input_ids, attention_mask=mb.attention_mask).logits[:, :-1].clone()
    logits[mb.action_mask] /= temperature
    rows, cols, allowed = mb.restrict
    logits[rows, cols] = logits[rows, cols].masked_fill(~allowed, float("-inf"))
    logp = torch.log_softmax(logits, -1)
    targets = mb.input_ids[:, 1:]
    chosen = logp.gather(-1, targets[..., None])[..., 0]
    entropy = -(logp.exp() * logp.nan_to_num(neginf=0.0)).sum(-1)
    return chosen, entropy, logits.argmax(-1) == targets


def _batch():
    seqs = [
        TrainingSequence(prompt_ids=[1, 2, 3, 4, 5, 6, 7], response_ids=[8, 9], wm_ids=[3, 4, 5], allowed=[[8, 10], [9, 2]]),
        TrainingSequence(prompt_ids=[1, 2, 3, 4], response_ids=[5, 6, 7], wm_ids=[9, 9]),
    ]
    (mb,) = micro_batches(seqs, budget_tokens=1000, pad_id=0, vocab=12)
    return mb


def test_forward_projects_only_the_positions_a_loss_reads_and_matches_the_full_computation():
    from pawkit.train.batching import forward

    model, mb = _tiny_lm(), _batch()
    seen = []
    model.register_forward_pre_hook(lambda _m, _a, kwargs: seen.append(kwargs.get("logits_to_keep")), with_kwargs=True)
    with torch.no_grad():
        out = forward(model, mb, temperature=0.7)
    (keep,) = seen  # one forward; the mask marks exactly the 5 + 5 response and WM positions, none after
    assert keep.dtype == torch.bool and keep.shape == mb.input_ids.shape
    assert keep[:, :-1].equal(mb.action_mask | mb.wm_mask) and not keep[:, -1].any() and keep.sum() == 10
    logprob, entropy, correct = _reference(model, mb, 0.7)
    read = mb.action_mask | mb.wm_mask
    torch.testing.assert_close(out.logprobs[read], logprob[read], rtol=0, atol=1e-6)
    torch.testing.assert_close(out.entropy[mb.action_mask], entropy[mb.action_mask], rtol=0, atol=1e-6)
    assert not out.entropy[mb.wm_mask].any()  # not computed where nobody reads it
    assert torch.equal(out.wm_correct[mb.wm_mask], correct[mb.wm_mask])
    assert out.logprobs.shape == mb.action_mask.shape and not out.logprobs[~read].any()


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_forward_gradient_equals_the_full_computation(temperature):
    """The WM positions' cheaper log-prob (no entropy) and the in-place action transforms give
    exactly the plain gradient of Σ log p (actions and WM) + Σ entropy (actions)."""
    from pawkit.train.batching import forward

    mb = _batch()
    grads = []
    for fast in (True, False):
        model = _tiny_lm()
        if fast:
            out = forward(model, mb, temperature=temperature)
            logprob, entropy = out.logprobs, out.entropy
        else:
            logprob, entropy, _ = _reference(model, mb, temperature)
        read = mb.action_mask | mb.wm_mask
        weights = torch.linspace(0.5, 1.5, int(read.sum()))
        loss = (logprob[read] * weights).sum() + 0.3 * entropy[mb.action_mask].sum()
        loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-5, atol=1e-6)


def test_a_model_without_a_logits_to_keep_mask_gets_its_logits_indexed_instead():
    from pawkit.train.batching import accepts_logits_to_keep, forward

    inner, mb = _tiny_lm(), _batch()

    class PlainLM(torch.nn.Module):  # a custom model: forward(input_ids, attention_mask) only
        def __init__(self):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask)

    class SliceOnlyLM(PlainLM):  # older transformers: logits_to_keep is an int or 1-D positions
        def forward(self, input_ids, attention_mask, logits_to_keep=0):
            out = self.inner(input_ids=input_ids, attention_mask=attention_mask)
            out.logits = out.logits[:, logits_to_keep if torch.is_tensor(logits_to_keep) else slice(-logits_to_keep, None)]
            return out

    assert accepts_logits_to_keep(inner) and not accepts_logits_to_keep(PlainLM())
    with torch.no_grad():
        trimmed, plain, sliced = forward(inner, mb), forward(PlainLM(), mb), forward(SliceOnlyLM(), mb)
    assert not accepts_logits_to_keep(SliceOnlyLM())  # learnt from its first call
    for other in (plain, sliced):
        assert torch.equal(trimmed.logprobs, other.logprobs) and torch.equal(trimmed.entropy, other.entropy)
