"""PaW strategy plugins (selectors, WM losses, balancers) on hand-made inputs with exact values."""

import math

import pytest
import torch

from pawkit import plugins
from pawkit.config import Config, PawConfig
from pawkit.strategies import GroupRows, StepRows, StrategyContext
from pawkit.train.paw import plan
from pawkit.train.strategy_calls import RunStrategies


def _get(kind, name):
    return plugins.get(kind, name)


def _rows(entropies) -> StepRows:
    n = len(entropies)
    return StepRows([str(i) for i in range(n)], ["t"] * n, list(range(n)), [0.0] * n, [0.0] * n, [""] * n, [False] * n,
                    action_entropy=[float(e) for e in entropies])


def _groups(means) -> GroupRows:
    means = [float(m) for m in means]
    return GroupRows([str(g) for g in range(len(means))], means, [1] * len(means), [0.0] * len(means))


def _select(name, entropies, cfg, generator):
    return _get("selector", name)(StrategyContext(cfg=cfg, rows=_rows(entropies), generator=generator))


def _balance(name, means, max_return, cfg):
    return _get("balancer", name)(StrategyContext(cfg=cfg, groups=_groups(means), max_return=max_return))


def _ctx(cfg):
    return StrategyContext(cfg=cfg)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- WM losses

def _probs_input():
    logp = torch.tensor([[0.2, 0.3]], dtype=torch.float64).log().requires_grad_(True)
    return logp, torch.tensor([[True, True]])


def test_cmae_spec_example_loss_and_zero_gradient_on_clipped_token():
    logp, mask = _probs_input()
    loss = _get("wm_loss", "cmae")(logp, mask, _ctx(PawConfig(rho=0.2)))
    assert loss.shape == (1,)
    assert loss.item() == pytest.approx(0.4, abs=1e-12)  # (0.8 + 0) / 2: the clipped token still counts
    loss.sum().backward()
    # d/dlogp (1 − e^logp)/2 = −p/2 for the kept token; exactly 0 for p = 0.3 > ρ.
    assert logp.grad[0, 0].item() == pytest.approx(-0.1, abs=1e-12)
    assert logp.grad[0, 1].item() == 0.0


def test_ce_and_mae_closed_form_on_the_same_input():
    logp, mask = _probs_input()
    ce = _get("wm_loss", "ce")(logp, mask, _ctx(PawConfig()))
    assert ce.item() == pytest.approx(-(math.log(0.2) + math.log(0.3)) / 2, abs=1e-12)
    mae = _get("wm_loss", "mae")(logp, mask, _ctx(PawConfig(rho=0.2)))  # ρ is ignored: no clip
    assert mae.item() == pytest.approx((0.8 + 0.7) / 2, abs=1e-12)
    mae.sum().backward()
    assert logp.grad[0].tolist() == pytest.approx([-0.1, -0.15], abs=1e-12)


@pytest.mark.parametrize("name", ["cmae", "ce", "mae"])
def test_wm_loss_rows_without_targets_give_zero_and_no_nan(name):
    # Row 0: one target (p = 0.1) and a -inf log-prob outside the mask; row 1: no target at all.
    logp = torch.tensor([[math.log(0.1), float("-inf")], [float("-inf"), 0.0]], requires_grad=True)
    mask = torch.tensor([[True, False], [False, False]])
    loss = _get("wm_loss", name)(logp, mask, _ctx(PawConfig(rho=0.2)))
    expected = {"cmae": 0.9, "ce": -math.log(0.1), "mae": 0.9}[name]
    assert loss.tolist() == pytest.approx([expected, 0.0], abs=1e-6)
    loss.sum().backward()
    assert torch.isfinite(logp.grad).all()
    assert logp.grad[0, 1].item() == 0.0 and logp.grad[1].tolist() == [0.0, 0.0]


def test_wm_loss_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same \\[B, T\\] shape"):
        _get("wm_loss", "cmae")(torch.zeros(2, 3), torch.ones(2, 4, dtype=torch.bool), _ctx(PawConfig()))


# ---------------------------------------------------------------- selectors

# Ties: 0.9 at indices 1 and 4, 0.5 at indices 0 and 2.
ENTROPIES = torch.tensor([0.5, 0.9, 0.5, 0.1, 0.9, 0.3])


def _picked(mask):
    assert mask.dtype == torch.bool and mask.shape == ENTROPIES.shape
    return mask.nonzero().flatten().tolist()


def test_entropy_selector_keeps_top_half_lower_index_wins_ties():
    mask = _select("entropy", ENTROPIES, PawConfig(keep_ratio=0.5), _gen())
    assert _picked(mask) == [0, 1, 4]  # 0.9, 0.9 and the first 0.5 (index 0 beats index 2)


def test_low_entropy_selector_keeps_bottom_half_lower_index_wins_ties():
    mask = _select("low_entropy", ENTROPIES, PawConfig(keep_ratio=0.5), _gen())
    assert _picked(mask) == [0, 3, 5]  # 0.1, 0.3 and the first 0.5


def test_ceil_of_keep_ratio():
    # ⌈0.4·6⌉ = 3 and ⌈0.7·10⌉ = 7 (0.7·10 is 7.000000000000001 in floating point).
    assert _select("entropy", ENTROPIES, PawConfig(keep_ratio=0.4), _gen()).sum().item() == 3
    ten = _select("entropy", torch.arange(10.0), PawConfig(keep_ratio=0.7), _gen())
    assert ten.nonzero().flatten().tolist() == [3, 4, 5, 6, 7, 8, 9]


def test_random_selector_same_count_and_reproducible_from_generator():
    cfg = PawConfig(keep_ratio=0.5)
    mask = _select("random", ENTROPIES, cfg, _gen(7))
    expected = torch.randperm(6, generator=_gen(7))[:3].sort().values.tolist()
    assert _picked(mask) == expected
    assert _picked(_select("random", ENTROPIES, cfg, _gen(7))) == expected
    draws = {tuple(_picked(_select("random", ENTROPIES, cfg, _gen(s)))) for s in range(20)}
    assert len(draws) > 1 and all(len(d) == 3 for d in draws)


@pytest.mark.parametrize("name", ["entropy", "all", "random", "low_entropy"])
def test_selectors_edge_cases(name):
    empty = _select(name, torch.zeros(0), PawConfig(), _gen())
    assert empty.dtype == torch.bool and empty.shape == (0,)
    assert _select(name, ENTROPIES, PawConfig(keep_ratio=1.0), _gen()).tolist() == [True] * 6


def test_keep_ratio_zero_selects_nothing_except_all():
    for name in ("entropy", "random", "low_entropy"):
        assert _select(name, ENTROPIES, PawConfig(keep_ratio=0.0), _gen()).sum().item() == 0
    assert _select("all", ENTROPIES, PawConfig(keep_ratio=0.0), _gen()).sum().item() == 6


# ---------------------------------------------------------------- balancers

def test_reward_adaptive_spec_example_unclipped():
    lam = _balance("reward_adaptive", torch.tensor([1.0, 0.0, -1.0]), 1.0, PawConfig(lambda0=0.05))
    assert lam.tolist() == pytest.approx([0.0, 0.05, 0.10], abs=1e-8)
    lam10 = _balance("reward_adaptive", torch.tensor([10.0, 5.0]), 10.0, PawConfig(lambda0=0.05))
    assert lam10.tolist() == pytest.approx([0.0, 0.025], abs=1e-8)


def test_reward_adaptive_needs_positive_max_return():
    with pytest.raises(ValueError, match="paw.balancer=fixed"):
        _balance("reward_adaptive", torch.tensor([0.0]), 0.0, PawConfig())


def test_fixed_and_none_balancers():
    means = torch.tensor([1.0, 0.0, -1.0])
    assert _balance("fixed", means, 1.0, PawConfig(lambda0=0.05)).tolist() == pytest.approx([0.05] * 3)
    assert _balance("none", means, 1.0, PawConfig(lambda0=0.05)).tolist() == [0.0, 0.0, 0.0]


def test_plan_group_without_selected_transition_contributes_zero():
    # 3 groups × 2 transitions; the entropy selector keeps the top 3: rows 0, 1 (group 0) and 2 (group 1).
    entropies = torch.tensor([0.9, 0.8, 0.7, 0.1, 0.2, 0.3])
    group_index = torch.tensor([0, 0, 1, 1, 2, 2])
    config = Config(paw=PawConfig(enabled=True, keep_ratio=0.5, lambda0=0.05))
    strategies = RunStrategies(config)
    p = plan(strategies, _rows(entropies), _groups([0.0, -1.0, 0.0]), group_index, torch.ones(6, dtype=torch.bool), 1, 1.0, _gen())
    assert p.selected.tolist() == [True, True, True, False, False, False]
    assert p.group_lambdas.tolist() == pytest.approx([0.05, 0.10, 0.05])
    # batch loss = mean over 3 groups of λ_g · mean over g's selected rows; group 2 adds nothing.
    assert p.weights.tolist() == pytest.approx([0.05 / 6, 0.05 / 6, 0.10 / 3, 0.0, 0.0, 0.0])
