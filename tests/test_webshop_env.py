"""The registered ``webshop`` env on its default generated catalogue: expert, search quality, tasks."""

from __future__ import annotations

import os

import pytest

from pawkit.plugins import registry
from pawkit.protocol import Task
from pawkit_adapters.webshop.catalog import cache_root
from pawkit_adapters.webshop.env import WebShopEnv, expert_query


@pytest.fixture(scope="module")
def env() -> WebShopEnv:
    made = registry("env").get("webshop").obj()
    assert made._catalog is None  # constructing loads nothing
    return made


def test_default_catalog_is_generated_into_the_cache(env):
    assert len(env.catalog.products) == 1000
    assert len(env.catalog.goals) >= 2000
    assert env.catalog.data_dir == cache_root() / "generated-v1-p1000-s0"
    assert str(env.catalog.data_dir).startswith(os.environ["PAWKIT_CACHE"])
    sizes = {split: len(env.tasks(split)) for split in env.splits}
    assert sizes == {"train": len(env.catalog.goals) - 1500, "dev": 1000, "test": 500}


def test_expert_buys_the_goal_with_reward_one(env):
    tasks = env.tasks("test")
    wins, steps = 0, []
    for task in tasks:
        env.reset(task)
        for turn in range(env.max_steps):
            result = env.step(env.expert_action())
            if result.done:
                break
        wins += result.success and result.reward == 1.0 and result.info["asin"] == result.info["target_asin"]
        steps.append(turn + 1)
    assert wins / len(tasks) >= 0.95
    assert max(steps) <= env.max_steps


def test_search_ranks_the_goal_product_in_the_top_ten(env):
    goals = env.catalog.goals
    found = sum(g.asin in env.catalog.engine.search(expert_query(g))[:10] for g in goals)
    assert found / len(goals) >= 0.9


def test_seeded_reset_without_task_is_reproducible_and_from_train(env):
    train = set(env.catalog.splits["train"])
    first = env.reset(seed=5).task
    assert env.reset(seed=5).task == first
    assert any(env.catalog.goals[i].instruction_text == first for i in train)


def test_reset_rejects_an_unknown_goal(env):
    with pytest.raises(ValueError, match="out of range"):
        env.reset(Task(id="x", info={"goal": 10**9}))


def test_options_change_the_generated_catalogue(tmp_path):
    small = WebShopEnv(products=60, catalog_seed=4)
    assert len(small.catalog.products) == 60
    assert small.catalog.data_dir.name == "generated-v1-p60-s4"
    with pytest.raises(ValueError, match="products must be >= 1"):
        WebShopEnv(products=0)


def test_results_per_page_sets_the_page_width_and_refuses_zero():
    import pytest

    with pytest.raises(ValueError, match="results_per_page must be >= 1, not 0"):
        WebShopEnv(results_per_page=0)
    env = WebShopEnv(results_per_page=3, search_action="instruction")
    obs = env.reset(env.tasks("test")[0])
    page = env.step(obs.admissible_actions[0]).observation
    products = [a for a in page.admissible_actions if a not in ("click[back to search]", "click[next >]")]
    assert len(products) == 3 and page.admissible_actions[:2] == ["click[back to search]", "click[next >]"]
