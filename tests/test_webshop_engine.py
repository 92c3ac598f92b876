"""Pages, actions, click matching, pagination and prompt pieces on a small real-schema catalogue."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from pawkit.protocol import Task
from pawkit_adapters.webshop.engine import parse_action
from pawkit_adapters.webshop.env import WebShopEnv

SEP = " [SEP] "


def _record(asin: str, name: str, pricing: str, options=None, bullets=None, description="A fine gadget.") -> dict:
    return {
        "asin": asin, "name": name, "full_description": description,
        "small_description": bullets if bullets is not None else ["Sturdy build", "Two year warranty"],
        "pricing": pricing, "images": [f"https://img/{asin}.jpg"],
        "product_category": "Electronics › Gadgets › Widgets", "category": "electronics", "query": " Widgets ",
        "customization_options": options, "brand": "Acme", "list_price": "$1",
    }


def write_fixture(folder: Path) -> Path:
    """One unique 'zebra lamp' with options, 11 'widget' products for paging, one bad ASIN, one duplicate."""
    records = [_record("B00ZEBRA01", "Striped Zebra Lamp", "$985.00",
                       {"Color": [{"value": "Black/White", "image": None}, {"value": "Gold", "image": None}],
                        "Size": [{"value": "Small", "image": None}, {"value": "Large", "image": None}],
                        "Style": None},
                       bullets=["Soft warm light", "Energy saving bulb"], description="A lamp with zebra stripes.")]
    records += [_record(f"B00WIDGT{i:02d}", f"Widget Model {i}", f"${10 + i}.50") for i in range(11)]
    records += [_record("nan", "Broken", "$1"), _record("B00WIDGT00", "Duplicate widget", "$2")]
    attrs = {r["asin"]: {"attributes": ["energy saving"] if "ZEBRA" in r["asin"] else ["durable"],
                         "instruction": "i need a zebra lamp" if "ZEBRA" in r["asin"] else None,
                         "instruction_attributes": ["energy saving"]} for r in records}
    (folder / "items_shuffle_1000.json").write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    (folder / "items_ins_v2_1000.json").write_text(json.dumps(attrs), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> WebShopEnv:
    return WebShopEnv(data_dir=str(write_fixture(tmp_path_factory.mktemp("webshop"))))


def start(env: WebShopEnv, color: str = "black | white", size: str = "large"):
    index = next(i for i, g in enumerate(env.catalog.goals) if g.options == {"color": color, "size": size})
    return env.reset(Task(id="t", info={"goal": index}))


INSTR = "i need a zebra lamp with color: black | white, and size: large"
HEAD = f"Instruction:{SEP}{INSTR}{SEP}Back to Search"


def test_loader_goals_follow_webshop_rules(env):
    assert len(env.catalog.products) == 12  # 'nan' skipped, duplicate ASIN keeps the first
    assert env.catalog.products["B00WIDGT00"].name == "Widget Model 0"
    assert env.catalog.products["B00WIDGT03"].query == "widgets"
    zebra = env.catalog.products["B00ZEBRA01"]
    assert zebra.options == {"color": ["black | white", "gold"], "size": ["small", "large"]}
    assert (zebra.price_tag, zebra.price) == ("$985.0", 985.0)
    texts = sorted(g.instruction_text for g in env.catalog.goals)  # price >= 980: no ceiling, no suffix
    assert texts == [
        "i need a zebra lamp with color: black | white, and size: large",
        "i need a zebra lamp with color: black | white, and size: small",
        "i need a zebra lamp with color: gold, and size: large",
        "i need a zebra lamp with color: gold, and size: small",
    ]
    assert {g.price_upper for g in env.catalog.goals} == {1000000.0}


def test_search_page(env):
    obs = start(env)
    assert obs.text == f"WebShop{SEP}Instruction:{SEP}{INSTR}{SEP}Search"
    assert obs.admissible_actions == ["search[<your query>]", "click[search]"]
    assert env.format_observation(obs) == "'Search'"


def test_results_item_and_sub_pages(env):
    start(env)
    r = env.step("search[zebra lamp]")
    assert r.observation.text == f"{HEAD}{SEP}Page 1 (Total results: 1){SEP}Next >{SEP}B00ZEBRA01{SEP}Striped Zebra Lamp{SEP}$985.0"
    assert r.observation.admissible_actions == ["click[back to search]", "click[next >]", "click[b00zebra01]"]
    r = env.step("click[b00zebra01]")
    item = (f"{HEAD}{SEP}< Prev{SEP}color{SEP}black | white{SEP}gold{SEP}size{SEP}small{SEP}large{SEP}Striped Zebra Lamp"
            f"{SEP}Price: $985.0{SEP}Rating: N.A.{SEP}Description{SEP}Features{SEP}Reviews{SEP}Buy Now")
    assert r.observation.text == item
    assert r.observation.admissible_actions == [
        "click[back to search]", "click[< prev]", "click[description]", "click[features]", "click[reviews]",
        "click[buy now]", "click[black | white]", "click[gold]", "click[small]", "click[large]"]
    assert env.step("click[description]").observation.text == f"{HEAD}{SEP}< Prev{SEP}A lamp with zebra stripes."
    assert env.step("click[< prev]").observation.text == item
    assert env.step("click[features]").observation.text == f"{HEAD}{SEP}< Prev{SEP}Soft warm light{SEP}Energy saving bulb"
    env.step("click[< prev]")
    r = env.step("click[reviews]")
    assert r.observation.text == f"{HEAD}{SEP}< Prev"
    assert r.observation.admissible_actions == ["click[back to search]", "click[< prev]"]
    assert env.format_observation(r.observation) == "'Back to Search' [SEP] '< Prev'"


def test_options_buy_and_done_page(env):
    start(env)
    env.step("search[zebra lamp]")
    env.step("click[b00zebra01]")
    env.step("click[gold]")
    env.step("click[large]")
    env.step("click[black | white]")  # overwrites the colour chosen before
    r = env.step("click[buy now]")
    assert (r.done, r.success, r.reward, r.info["task_score"]) == (True, True, 1.0, 1.0)
    assert r.info["reward_breakdown"]["r_option"] == 1.0
    assert r.observation.text == (
        f"Thank you for shopping with us!{SEP}Your code:{SEP}Purchased{SEP}asin{SEP}B00ZEBRA01{SEP}options{SEP}"
        f'{{"color": "black | white", "size": "large"}}{SEP}Your score (min 0.0, max 1.0){SEP}1.0')
    assert r.observation.admissible_actions == []
    with pytest.raises(RuntimeError, match="reset"):
        env.step("click[buy now]")


def test_prev_on_item_clears_options_but_sub_page_keeps_them(env):
    start(env)
    env.step("search[zebra lamp]")
    env.step("click[b00zebra01]")
    env.step("click[small]")
    env.step("click[features]")
    env.step("click[< prev]")
    assert env._session.options == {"size": "small"}
    env.step("click[< prev]")
    assert env._session.page == "results" and env._session.options == {}
    env.step("click[back to search]")
    assert env._session.page == "search" and env._session.keywords == ""


@pytest.mark.parametrize("action", [
    "click[search]", "click[Zebra]", "click[ buy now]", "click[buy now]", "search[]", "buy now", "jump[x]",
    "click[next >]", "",
])
def test_invalid_actions_change_nothing(env, action):
    obs = start(env)
    r = env.step(action)
    assert (r.observation.text, r.reward, r.done, r.info["invalid_action"]) == (obs.text, 0.0, False, True)
    assert r.observation.admissible_actions == obs.admissible_actions


def test_invalid_click_on_item_page_keeps_page_and_options(env):
    start(env)
    env.step("search[zebra lamp]")
    before = env.step("click[b00zebra01]").observation
    r = env.step("click[purple]")
    assert (r.observation.text, r.info["invalid_action"], env._session.options) == (before.text, True, {})


def test_action_parsing_matches_webshop_regex():
    assert parse_action("search[red shoes]") == ("search", "red shoes")
    assert parse_action("click[B00X]") == ("click", "b00x")
    assert parse_action("click[a[b]c]trailing") == ("click[a", "b]c")  # greedy, text after the last ] ignored
    assert parse_action("search[]") == ("search[]", None)


def test_case_of_action_name_is_raw_webshop_when_lowercasing_is_off(tmp_path):
    strict = WebShopEnv(data_dir=str(write_fixture(tmp_path)), lowercase_actions=False)
    obs = strict.reset(Task(id="t", info={"goal": 0}))
    assert strict.step("Search[zebra]").info["invalid_action"] is True
    assert strict.step("search[ZEBRA Lamp]").observation.text.startswith(f"Instruction:{SEP}") and obs.text


def test_pagination_and_search_from_any_page(env):
    start(env)
    env.step("click[search]")
    r = env.step("search[widget]")
    assert "Page 1 (Total results: 11)" in r.observation.text
    assert "< Prev" not in r.observation.text
    assert sum(a.startswith("click[b00widgt") for a in r.observation.admissible_actions) == 10
    r = env.step("click[next >]")
    assert r.observation.admissible_actions[:3] == ["click[back to search]", "click[< prev]", "click[next >]"]
    assert len(r.observation.admissible_actions) == 4
    r = env.step("click[next >]")  # past the end: an empty page, and Next > is still offered
    assert r.observation.text == f"{HEAD}{SEP}Page 3 (Total results: 11){SEP}< Prev{SEP}Next >"
    env.step("click[< prev]")
    r = env.step("click[< prev]")
    assert "Page 1 (Total results: 11)" in r.observation.text
    hits = [a for a in r.observation.admissible_actions if a.startswith("click[b00")]
    env.step(hits[0])
    r = env.step("search[zebra]")  # search works from the item page too
    assert "Page 1 (Total results: 1)" in r.observation.text
    r = env.step("search[qwertyuiop]")
    assert r.observation.text == f"{HEAD}{SEP}Page 1 (Total results: 0){SEP}Next >"


def test_max_steps_ends_without_reward(tmp_path):
    short = WebShopEnv(data_dir=str(write_fixture(tmp_path)), max_steps=2)
    short.reset(Task(id="t", info={"goal": 0}))
    assert short.step("search[zebra]").done is False
    r = short.step("click[b00zebra01]")
    assert (r.done, r.reward, r.success) == (True, 0.0, False)


def test_reward_scale_and_success_mode(tmp_path):
    folder = write_fixture(tmp_path)
    for options, expected in (({}, 10.0), ({"success_reward": True}, 10.0)):
        e = WebShopEnv(data_dir=str(folder), reward_scale=10.0, **options)
        start(e)
        for action in ("search[zebra lamp]", "click[b00zebra01]", "click[black | white]", "click[large]"):
            e.step(action)
        assert e.step("click[buy now]").reward == expected
    for options, expected in (({}, 7.5), ({"success_reward": True}, 0.0)):
        e = WebShopEnv(data_dir=str(folder), reward_scale=10.0, **options)
        start(e)
        for action in ("search[zebra lamp]", "click[b00zebra01]", "click[large]"):
            e.step(action)
        r = e.step("click[buy now]")  # colour missing: (1 attribute + 1 option + price) / 4
        assert (r.reward, r.success, r.info["task_score"]) == (expected, False, 0.75)


def test_prompt_pieces(env):
    obs = start(env)
    assert env.format_admissible(obs.admissible_actions) == "\n'search[<your query>]',\n'click[search]',\n"
    r = env.step("search[zebra lamp]")
    assert env.anchor(r.observation) == (
        "'Back to Search' [SEP] 'Page 1 (Total results: 1)' [SEP] 'Next >' [SEP] 'B00ZEBRA01' [SEP] "
        "'Striped Zebra Lamp' [SEP] '$985.0'")


def test_random_action_replaces_the_search_placeholder(env):
    obs = start(env)
    rng = random.Random(3)
    actions = {env.random_action(obs, rng) for _ in range(30)}
    assert "click[search]" in actions and "search[<your query>]" not in actions
    words = set(INSTR.split())
    assert all(set(a[7:-1].split()) <= words for a in actions if a.startswith("search["))


def test_constructor_is_lazy(tmp_path):
    e = WebShopEnv(data_dir=str(tmp_path / "missing"))  # nothing is read until reset/tasks
    with pytest.raises(ValueError, match="missing is not a folder"):
        e.reset()


def test_instruction_search_action_for_constrained_decoding(tmp_path):
    e = WebShopEnv(data_dir=str(write_fixture(tmp_path)), search_action="instruction")
    obs = start(e)
    assert obs.admissible_actions == [f"search[{INSTR}]", "click[search]"]
    assert "Total results: 1" in e.step(obs.admissible_actions[0]).observation.text
    with pytest.raises(ValueError, match="search_action must be one of placeholder, instruction"):
        WebShopEnv(search_action="free")
