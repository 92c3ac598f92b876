"""WebShop's purchase reward on crafted product/goal pairs: every component and quirk, exact values."""

from __future__ import annotations

import pytest

from pawkit_adapters.webshop.nouns import nouns
from pawkit_adapters.webshop.products import Goal, Product
from pawkit_adapters.webshop.reward import get_reward, normalize_color, option_matches, token_set_ratio, type_reward


def product(**over) -> Product:
    fields = dict(
        asin="B000000001", name="Acme Running Shoes", description="Great for trail running.",
        bullets=["Breathable mesh upper", "Cushioned insole"], attributes=["rubber sole", "lace up"],
        options={"color": ["black", "navy blue", "stonewashed"], "size": ["9", "10"]}, query="running shoes",
        category="fashion", product_category="Clothing › Men › Shoes", pricing=[20.0], price_tag="$20.0", price=20.0,
    )
    fields.update(over)
    return Product(**fields)


def goal(**over) -> Goal:
    fields = dict(
        asin="B000000001", instruction_text="i need running shoes", attributes=["rubber sole", "breathable mesh"],
        options={"color": "navy blue", "size": "10"}, price_upper=30.0, name="Acme Running Shoes",
        query="running shoes", category="fashion", product_category="Clothing › Men › Shoes",
    )
    fields.update(over)
    return Goal(**fields)


def test_perfect_purchase_scores_one_with_breakdown():
    reward, info = get_reward(product(), goal(), 20.0, {"color": "navy blue", "size": "10"})
    assert reward == 1.0
    assert info == {"r_type": 1.0, "query_match": True, "category_match": True, "title_score": 1.0, "r_att": 1.0,
                    "w_att": 0.4, "r_price": 1.0, "w_price": 0.2, "attribute_matches": 2, "option_matches": 2,
                    "r_option": 1.0, "w_option": 0.4}


def test_normalisation_counts_attributes_options_and_price():
    # 1 of 2 attributes, 1 of 2 options, price fails: (1 + 1 + 0) / 5
    reward, info = get_reward(product(), goal(attributes=["rubber sole", "water resistant"]), 35.0, {"size": "10"})
    assert reward == pytest.approx(2 / 5)
    assert (info["r_att"], info["r_option"], info["r_price"]) == (0.5, 0.5, 0.0)


def test_price_equal_to_ceiling_passes_and_missing_options_lose_their_share():
    reward, _ = get_reward(product(), goal(), 30.0, {})
    assert reward == pytest.approx(3 / 5)


def test_attribute_matches_by_fuzzy_attribute_then_title_bullets_description():
    g = goal(attributes=["rubber soles", "breathable mesh", "trail running", "acme", "waterproof"], options={})
    reward, info = get_reward(product(), g, 20.0, {})
    assert info["attribute_matches"] == 4  # fuzzy, bullets, description, title; not "waterproof"
    assert reward == pytest.approx(5 / 6)


@pytest.mark.parametrize(
    "goal_name, goal_query, goal_category, r_type, title_score",
    [
        ("Bolt Running Shoes", "sneakers", "Sports › Outdoors", 1.0, 2 / 3),  # title overlap > 0.2
        ("Bolt Trail Jacket Coat Vest Shoes", "sneakers", "Sports › Outdoors", 0.5, 1 / 6),  # no match -> 0.5
        ("Bolt Trail Jacket Coat Vest Shoes", "running shoes", "Sports › Outdoors", 1.0, 1 / 6),  # query match
        ("Bolt Trail Jacket Coat Vest Shoes", "sneakers", "Clothing › Men › Boots", 1.0, 1 / 6),  # 2 breadcrumbs
        ("Bolt Trail Jacket Coat Vest Hat Cap Bag Belt Sock Shoes", "running shoes", "Clothing › Men", 0.1, 1 / 11),
        ("Bolt Trail Jacket", "running shoes", "Clothing › Men › Shoes", 0.0, 0.0),  # zero overlap wins
        ("The Best", "sneakers", "Sports", 0.5, 0.2),  # no nouns: title_score 0.2, not > 0.2
    ],
)
def test_type_reward_cases(goal_name, goal_query, goal_category, r_type, title_score):
    info = type_reward(product(), goal(name=goal_name, query=goal_query, product_category=goal_category))
    assert info["r_type"] == r_type
    assert info["title_score"] == pytest.approx(title_score)


def test_zero_title_overlap_zeroes_the_whole_reward():
    reward, _ = get_reward(product(), goal(name="Bolt Trail Jacket"), 20.0, {"color": "navy blue", "size": "10"})
    assert reward == 0.0


def test_half_type_reward_scales_the_total():
    g = goal(name="Bolt Trail Jacket Coat Vest Shoes", query="sneakers", product_category="Sports › Outdoors")
    reward, _ = get_reward(product(), g, 20.0, {"color": "navy blue", "size": "10"})
    assert reward == 0.5


def test_title_nouns_count_duplicates_in_the_goal():
    assert nouns("Shoes Shoes Acme") == ["shoes", "shoes", "acme"]
    info = type_reward(product(), goal(name="Shoes Shoes Bolt Trail"))
    assert info["title_score"] == pytest.approx(1 / 4)  # |{shoes}| over 4 goal nouns, duplicates counted


def test_nouns_drop_numbers_function_words_and_listed_adjectives():
    assert nouns("The Men's Lightweight Waterproof Jacket for Hiking, 2 Pack") == ["men", "jacket", "hiking", "pack"]


@pytest.mark.parametrize(
    "value, expected",
    [("stonewashed", "ash"), ("navy blue", "blue"), ("black | white", "black"), ("12 oz", "12 oz"),
     (("color", "black"), "black"), (("color", "navy blue"), ("color", "navy blue"))],
)
def test_normalize_color_substring_and_tuple_rules(value, expected):
    assert normalize_color(value) == expected


def test_synthetic_options_compare_as_name_value_tuples():
    assert token_set_ratio("10", ("size", "10")) == 100  # "size 10" contains every token of "10"
    assert option_matches(["navy blue"], [("color", "navy blue")]) == 1  # 'blue' is a token of the tuple
    assert option_matches(["stonewashed"], [("color", "stonewashed")]) == 0  # 'ash' is not
    assert option_matches(["stonewashed"], ["stonewashed"]) == 1  # human goals: both sides become 'ash'


def test_stonewashed_quirk_in_a_full_reward():
    g = goal(attributes=["rubber sole"], options={"color": "stonewashed"})
    reward, info = get_reward(product(), g, 20.0, {"color": "stonewashed"})
    assert info["option_matches"] == 0
    assert reward == pytest.approx(2 / 3)


def test_human_goal_options_are_a_list_of_values():
    g = goal(options=["navy blue", "10"])
    reward, info = get_reward(product(), g, 20.0, {"color": "navy blue", "size": "10"})
    assert (reward, info["option_matches"]) == (1.0, 2)


def test_purchased_asin_is_never_checked():
    other = product(asin="B000000002", name="Zed Running Shoes Rubber Sole")
    reward, _ = get_reward(other, goal(), 20.0, {"color": "navy blue", "size": "10"})
    assert reward == 1.0
