"""Over ``rollout.max_prompt_tokens`` the head survives: oldest history goes first, then the middle
of the observation (marked); a budget too small for the head is one clear error."""

from __future__ import annotations

import pytest

from pawkit import plugins
from pawkit.config import RolloutConfig
from pawkit.protocol import Observation
from pawkit.rollout.budget import CUT_MARKER, PromptBudgetError, cut_middle, fit_prompt
from pawkit.rollout.generate import Generator
from pawkit.rollout.prompts import build_prompt
from pawkit.train.models import byte_tokenizer


def test_cut_middle_keeps_both_ends_and_says_how_much_went():
    assert cut_middle("abcdefghij", 4) == "ab" + CUT_MARKER.format(n=6) + "ij"
    assert cut_middle("abcdefghij", 3) == "ab" + CUT_MARKER.format(n=7) + "j"
    assert cut_middle("abcdefghij", 0) == CUT_MARKER.format(n=10)
    assert cut_middle("abc", 5) == "abc"


@pytest.fixture(scope="module")
def gridnav_prompt():
    env = plugins.get("env", "gridnav")()
    tokenizer = byte_tokenizer()
    gen = Generator(None, tokenizer, RolloutConfig(chat_template=True))
    obs = env.reset(env.tasks("train")[0])
    obs = obs.model_copy(update={"text": obs.text + "\n" + "a long wall description. " * 20})
    history = [(f"observation {k} " + "x" * 40, "go north") for k in range(4)]

    def render(h, o):
        return build_prompt(env, o, "reach the goal", history, h, "action", "verl")

    return env, gen, obs, history, render


def test_history_goes_first_then_the_observation_middle(gridnav_prompt):
    env, gen, obs, history, render = gridnav_prompt
    full = gen.encode(render(2, obs))
    one = gen.encode(render(1, obs))
    none = gen.encode(render(0, obs))
    assert len(full) > len(one) > len(none)

    fitted = fit_prompt(render, gen.encode, obs, 2, len(history), len(full))
    assert (fitted.ids, fitted.history_shown, fitted.cut_characters) == (full, 2, 0)
    fitted = fit_prompt(render, gen.encode, obs, 2, len(history), len(full) - 1)
    assert (fitted.ids, fitted.history_shown, fitted.cut_characters) == (one, 1, 0)
    fitted = fit_prompt(render, gen.encode, obs, 2, len(history), len(none))
    assert (fitted.ids, fitted.history_shown, fitted.cut_characters) == (none, 0, 0)

    budget = len(none) - 5
    fitted = fit_prompt(render, gen.encode, obs, 2, len(history), budget)
    text = gen.tokenizer.decode(fitted.ids)
    assert fitted.history_shown == 0 and fitted.cut_characters > 0 and len(fitted.ids) <= budget
    assert text.startswith("<|im_start|>user\n" + env.role + " Your task is to: reach the goal.")
    assert CUT_MARKER.format(n=fitted.cut_characters) in text
    # the most that fits: one character more would not
    longer = cut_middle(obs.text, len(obs.text) - fitted.cut_characters + 1)
    assert len(gen.encode(render(0, obs.model_copy(update={"text": longer})))) > budget


def test_a_budget_below_the_head_is_one_clear_error(gridnav_prompt):
    env, gen, obs, history, render = gridnav_prompt
    head = gen.encode(render(0, Observation(text=CUT_MARKER.format(n=len(obs.text)), admissible_actions=obs.admissible_actions)))
    with pytest.raises(PromptBudgetError, match=rf"max_prompt_tokens=20 cannot hold this prompt's head: it needs {len(head)} tokens"):
        fit_prompt(render, gen.encode, obs, 2, len(history), 20)


def test_webshop_history_2_budget_600_keeps_header_and_task_at_every_step():
    """The issue's example: from step 1 on, left-cutting lost the instruction (the product to buy)."""
    import torch

    from pawkit.config import load_config
    from pawkit.rollout.envpool import make_env_pool
    from pawkit.rollout.run import run_rollout
    from pawkit.train.models import load_model

    cfg = load_config("webshop", overrides=[
        "model.name=tiny", "model.lora.enabled=false", "env.options.products=60",
        "rollout.history_length=2", "rollout.max_prompt_tokens=600", "rollout.max_steps=4", "rollout.max_new_tokens=24",
        # the verl template's header and WebShop's 10 results per page (the main job's config is compact, 3 per page)
        "rollout.prompt_style=verl", "rollout.output_format=action", "env.options.results_per_page=10",
    ])
    torch.manual_seed(0)
    model, tokenizer = load_model(cfg.model)
    env = plugins.get("env", "webshop")(**cfg.env.options)
    pool = make_env_pool("webshop", cfg.env.options, 2, 0)
    try:
        tasks = list(env.tasks("train"))[:2]
        batch = run_rollout(env, pool, Generator(model, tokenizer, cfg.rollout), tasks, 1, cfg.rollout, 1.0)
    finally:
        pool.close()
        env.close()
    later = [s for s in batch.samples if s.step_index >= 1]
    assert later and batch.truncated_prompts >= len(later)  # the budget really bit
    head = "<|im_start|>user\n" + env.role + " Your task is to: "
    for sample in batch.samples:
        text = tokenizer.decode(sample.prompt_ids)
        assert len(sample.prompt_ids) <= 600
        assert text.startswith(head), text[:200]
        assert text.endswith("<|im_end|>\n<|im_start|>assistant\n")
