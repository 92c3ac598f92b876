"""RL loss math against hand-computed numbers: PPO-clip with dual clip, k3 KL, chunked log-probs."""

import math

import pytest
import torch

from pawkit.train.losses import low_var_kl, masked_mean, ppo_clip_loss, restrict_logits, token_logprobs_and_entropy


def _ppo_example():
    """Five tokens, the last one padding. Ratios and advantages chosen to hit every branch."""
    ratios = torch.tensor([[1.5, 0.5, 5.0, 1.1, 9.0]], dtype=torch.float64)
    old = torch.tensor([[-1.0, -2.0, -0.5, -3.0, -1.0]], dtype=torch.float64)
    logprobs = (old + ratios.log()).requires_grad_(True)
    advantages = torch.tensor([[1.0, -1.0, -1.0, 2.0, 1.0]], dtype=torch.float64)
    mask = torch.tensor([[True, True, True, True, False]])
    return logprobs, old, advantages, mask


def test_ppo_clip_hand_computed():
    logprobs, old, adv, mask = _ppo_example()
    loss, clip_fraction = ppo_clip_loss(logprobs, old, adv, mask, 0.2, 0.2, 3.0)
    # tok0 A=+1 r=1.5: max(−1.5, −1.2) = −1.2 (clipped)
    # tok1 A=−1 r=0.5: max(0.5, 0.8) = 0.8 (clipped); dual cap 3 not reached
    # tok2 A=−1 r=5:   max(5, 1.2) = 5 → dual clip min(5, 3) = 3
    # tok3 A=+2 r=1.1: −2.2 (inside the trust region); tok4 is padding
    assert loss.item() == pytest.approx((-1.2 + 0.8 + 3.0 - 2.2) / 4, abs=1e-12)
    assert clip_fraction.item() == pytest.approx(2 / 4)
    loss.backward()
    # Only tok3 passes gradient: d(−A·r/4)/dlogπ = −A·r/4 = −0.55.
    assert logprobs.grad.tolist()[0] == pytest.approx([0.0, 0.0, 0.0, -0.55, 0.0], abs=1e-12)


def test_ppo_clip_higher_and_dual_clip_constant():
    logprobs, old, adv, mask = _ppo_example()
    loss, _ = ppo_clip_loss(logprobs, old, adv, mask, clip_low=0.2, clip_high=0.28, clip_ratio_c=4.0)
    # tok0 now −1.28; tok2 max(5, 1.28) = 5 → min(5, 4) = 4.
    assert loss.item() == pytest.approx((-1.28 + 0.8 + 4.0 - 2.2) / 4, abs=1e-12)


def test_ppo_clip_ignores_nonfinite_padding_and_rejects_bad_dual_constant():
    logprobs = torch.tensor([[math.log(1.1), float("-inf")]], requires_grad=True)
    loss, _ = ppo_clip_loss(logprobs, torch.zeros(1, 2), torch.tensor([[1.0, 1.0]]), torch.tensor([[True, False]]))
    assert loss.item() == pytest.approx(-1.1, abs=1e-6)
    loss.backward()
    assert torch.isfinite(logprobs.grad).all() and logprobs.grad[0, 1].item() == 0.0
    with pytest.raises(ValueError, match="clip_ratio_c must be > 1"):
        ppo_clip_loss(logprobs, torch.zeros(1, 2), torch.ones(1, 2), torch.ones(1, 2, dtype=torch.bool), clip_ratio_c=1.0)


def test_low_var_kl_k3_values_and_clamp():
    logprobs = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    ref = torch.tensor([math.log(2.0), -math.log(2.0), 0.0, 100.0], dtype=torch.float64)
    kl = low_var_kl(logprobs, ref)
    # δ = ln 2: 2 − ln 2 − 1; δ = −ln 2: 0.5 + ln 2 − 1; δ = 0: 0; δ = 100: clamped to 10.
    assert kl.tolist() == pytest.approx([1 - math.log(2), math.log(2) - 0.5, 0.0, 10.0], abs=1e-12)
    kl.sum().backward()
    # dk3/dlogπ = 1 − exp(δ): −1, +0.5, 0, and 0 (not NaN) where the clamp is active.
    assert logprobs.grad.tolist() == pytest.approx([-1.0, 0.5, 0.0, 0.0], abs=1e-12)


def test_masked_mean():
    values = torch.tensor([[1.0, 2.0, 30.0], [4.0, 50.0, 60.0]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    assert masked_mean(values, mask).item() == pytest.approx(7 / 3)
    assert masked_mean(values, torch.zeros_like(mask)).item() == 0.0


def _naive(logits, targets):
    logp = torch.log_softmax(logits, dim=-1)
    p = logp.exp()
    return logp.gather(-1, targets[..., None]).squeeze(-1), -(p * torch.nan_to_num(logp, neginf=0.0)).sum(-1)


@pytest.mark.parametrize("chunk_size", [1, 5, 8, 1024])
def test_chunked_logprobs_and_entropy_match_naive(chunk_size):
    g = torch.Generator().manual_seed(0)
    full = (3 * torch.randn(3, 8, 50, generator=g)).requires_grad_(True)
    logits = full[:, :-1]  # the trainer's non-contiguous shifted view
    targets = torch.randint(0, 50, (3, 7), generator=g)
    lp, ent = token_logprobs_and_entropy(logits, targets, chunk_size)
    ref_lp, ref_ent = _naive(logits, targets)
    assert lp.shape == ent.shape == (3, 7)
    torch.testing.assert_close(lp, ref_lp, atol=1e-5, rtol=0)
    torch.testing.assert_close(ent, ref_ent, atol=1e-5, rtol=0)
    # Gradients through the checkpointed chunks equal the naive ones too.
    weights = torch.randn(3, 7, generator=g)
    (grad,) = torch.autograd.grad(((lp + ent) * weights).sum(), full)
    (ref_grad,) = torch.autograd.grad(((ref_lp + ref_ent) * weights).sum(), full)
    torch.testing.assert_close(grad, ref_grad, atol=1e-5, rtol=0)


def test_uniform_logits_give_log_vocab_entropy():
    lp, ent = token_logprobs_and_entropy(torch.zeros(2, 3, 16), torch.zeros(2, 3, dtype=torch.long), chunk_size=2)
    assert lp.flatten().tolist() == pytest.approx([-math.log(16)] * 6, abs=1e-6)
    assert ent.flatten().tolist() == pytest.approx([math.log(16)] * 6, abs=1e-6)


def test_restricted_logits_renormalise_over_allowed_ids():
    logits = torch.zeros(1, 2, 4, requires_grad=True)
    allowed = torch.tensor([[[True, True, False, False], [False, False, False, True]]])
    restricted = restrict_logits(logits, allowed)
    assert restricted[0, 0].tolist() == [0.0, 0.0, float("-inf"), float("-inf")]
    targets = torch.tensor([[1, 3]])
    lp, ent = token_logprobs_and_entropy(logits, targets, allowed_mask=allowed)
    # Two equally likely ids → log ½ and entropy ln 2; a single allowed id → log 1 and entropy 0.
    assert lp.tolist()[0] == pytest.approx([-math.log(2), 0.0], abs=1e-6)
    assert ent.tolist()[0] == pytest.approx([math.log(2), 0.0], abs=1e-6)
    (lp.sum() + ent.sum()).backward()
    assert torch.isfinite(logits.grad).all()
    lp2, ent2 = token_logprobs_and_entropy(restricted, targets)
    assert lp2.tolist() == lp.tolist() and ent2.tolist() == ent.tolist()
    # A disallowed target has probability 0.
    assert token_logprobs_and_entropy(logits, torch.tensor([[2, 3]]), allowed_mask=allowed)[0][0, 0].item() == float("-inf")


def test_restrict_logits_rejects_bad_masks():
    with pytest.raises(ValueError, match="no allowed token"):
        restrict_logits(torch.zeros(1, 2, 3), torch.tensor([[[True, False, False], [False, False, False]]]))
    with pytest.raises(ValueError, match="bool"):
        restrict_logits(torch.zeros(1, 1, 3), torch.ones(1, 1, 3))


@pytest.mark.parametrize("chunk_size", [1, 3, 1024])
def test_chunked_logprobs_only_match_naive_value_and_gradient(chunk_size):
    from pawkit.train.losses import token_logprobs

    torch.manual_seed(0)
    logits = torch.randn(7, 11, dtype=torch.float64)
    logits[2, 4] = float("-inf")  # a restricted id: probability 0, gradient 0
    targets = torch.tensor([0, 3, 5, 10, 1, 1, 7])
    weights = torch.linspace(-1.0, 2.0, 7, dtype=torch.float64)
    fast_in = logits.clone().requires_grad_(True)
    naive_in = logits.clone().requires_grad_(True)
    fast = token_logprobs(fast_in, targets, chunk_size)
    naive = torch.log_softmax(naive_in, -1).gather(-1, targets[:, None])[:, 0]
    torch.testing.assert_close(fast, naive, rtol=0, atol=1e-12)
    (fast * weights).sum().backward()
    (naive * weights).sum().backward()
    torch.testing.assert_close(fast_in.grad, naive_in.grad, rtol=0, atol=1e-12)
    assert fast_in.grad[2, 4] == 0.0
