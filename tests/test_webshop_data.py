"""Loader, goals, price ceilings, splits and the catalogue generator (WebShop's file schema)."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
from collections import Counter
from math import prod
from pathlib import Path

import pytest

from pawkit_adapters.webshop.generate import generate
from pawkit_adapters.webshop.products import (
    DataError,
    build_goals,
    load_products,
    parse_pricing,
    price_ceiling,
    split_indices,
)

FILES = ("items_shuffle.json", "items_ins_v2.json", "items_human_ins.json")


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gen")
    generate(out, products=300, seed=7)
    return out


@pytest.mark.parametrize("raw, expected", [
    ("$12.99", [12.99]), ("$1,299.00 - $1,499.00", [1299.0, 1499.0]), ("", [100.0]), (None, [100.0]),
    ("from $5 to $6 or $7", [5.0, 6.0]), ("free", [100.0]),
])
def test_parse_pricing(raw, expected):
    assert parse_pricing(raw) == expected


def test_price_ceiling_is_the_2nd_3rd_or_4th_multiple_of_ten_above():
    rng = random.Random(0)
    draws = Counter(price_ceiling(12.0, rng)[0] for _ in range(6000))
    assert set(draws) == {30.0, 40.0, 50.0}
    assert [round(draws[p] / 6000, 1) for p in (30.0, 40.0, 50.0)] == [0.2, 0.3, 0.5]  # 1/6, 2/6, 3/6
    assert price_ceiling(975.0, rng) == (990.0, ", and price lower than 990.00 dollars")
    assert price_ceiling(985.0, rng) == (1000000.0, "")
    assert price_ceiling(20.0, rng)[0] in {40.0, 50.0, 60.0}  # strictly greater than the price


def test_generator_is_deterministic(tmp_path, generated):
    generate(tmp_path / "a", products=300, seed=7)
    generate(tmp_path / "b", products=300, seed=8)
    for name in FILES:
        assert (tmp_path / "a" / name).read_bytes() == (generated / name).read_bytes()
    assert (tmp_path / "b" / FILES[0]).read_bytes() != (generated / FILES[0]).read_bytes()


def test_generated_files_use_webshop_schema(generated):
    records = json.loads((generated / FILES[0]).read_text(encoding="utf-8"))
    attrs = json.loads((generated / FILES[1]).read_text(encoding="utf-8"))
    human = json.loads((generated / FILES[2]).read_text(encoding="utf-8"))
    assert len(records) == 300 and len(attrs) == 300
    assert {r["category"] for r in records} == {"beauty", "electronics", "fashion", "food", "furniture"}
    for r in records:
        assert len(r["asin"]) == 10 and r["asin"].startswith("B0")
        assert r["pricing"].startswith("$") and isinstance(r["small_description"], list)
        assert r["product_category"].count(" › ") >= 2
        for values in (r["customization_options"] or {}).values():
            assert all(set(v) == {"value", "image"} for v in values)
        assert set(attrs[r["asin"]]["instruction_attributes"]) <= set(attrs[r["asin"]]["attributes"])
    assert all(set(rec[0]) >= {"instruction", "instruction_attributes", "instruction_options"} for rec in human.values())


def test_loader_reads_generated_files_synthetic_goals(generated):
    products = load_products(generated)
    assert len(products) == 300
    goals = build_goals(products)
    assert len(goals) == sum(prod(len(v) for v in p.options.values()) for p in products)  # one per combination
    for g in goals:
        assert g.price_upper == 1000000.0 or g.instruction_text.endswith(f", and price lower than {g.price_upper:.2f} dollars")
    g = next(g for g in goals if g.options)
    assert ", and ".join(f"{k}: {v}" for k, v in g.options.items()) in g.instruction_text
    weights = [g.weight for g in goals]
    assert all(0 < w <= 1 for w in weights) and len(set(weights)) > 1  # rarer attributes weigh more


def test_loader_reads_human_goals(generated):
    products = load_products(generated, human=True)
    human = json.loads((generated / FILES[2]).read_text(encoding="utf-8"))
    goals = build_goals(products, human=True)
    assert len(goals) == sum(len(v) for v in human.values())
    assert all(isinstance(g.options, list) and not g.instruction_text.endswith(".") for g in goals)


def test_num_products_slices_the_file(generated):
    assert [p.asin for p in load_products(generated, num_products=10)] == [p.asin for p in load_products(generated)][:10]


def test_goal_order_and_prices_are_the_same_on_every_load(generated):
    a = build_goals(load_products(generated))
    b = build_goals(load_products(generated))
    assert [(g.asin, g.instruction_text) for g in a] == [(g.asin, g.instruction_text) for g in b]


def test_splits_partition_the_goals():
    s = split_indices(4098)
    assert (s["test"], s["dev"], s["train"]) == (range(0, 500), range(500, 1500), range(1500, 4098))
    small = split_indices(100)
    assert (len(small["test"]), len(small["dev"]), len(small["train"])) == (10, 20, 70)
    assert sorted(i for r in small.values() for i in r) == list(range(100))


def test_split_is_stable_across_processes(generated):
    code = ("from pathlib import Path; from pawkit_adapters.webshop.env import WebShopEnv; import hashlib;"
            f"e = WebShopEnv(data_dir={str(generated)!r});"
            "print(hashlib.sha1(repr([(t.id, t.description) for t in e.tasks('test')]).encode()).hexdigest())")
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout for _ in range(2)}
    from pawkit_adapters.webshop.env import WebShopEnv

    here = hashlib.sha1(repr([(t.id, t.description) for t in WebShopEnv(data_dir=str(generated)).tasks("test")]).encode())
    assert runs == {here.hexdigest() + "\n"}
    e = WebShopEnv(data_dir=str(generated))
    ids = {split: {t.id for t in e.tasks(split)} for split in e.splits}
    assert not (ids["train"] & ids["dev"] or ids["train"] & ids["test"] or ids["dev"] & ids["test"])
    assert sum(map(len, ids.values())) == len(e.catalog.goals)


def _copy(generated: Path, folder: Path) -> Path:
    folder.mkdir()
    for name in FILES:
        (folder / name).write_bytes((generated / name).read_bytes())
    return folder


def test_malformed_json_names_the_file(generated, tmp_path):
    folder = _copy(generated, tmp_path / "d")
    (folder / FILES[0]).write_text("[{", encoding="utf-8")
    with pytest.raises(DataError) as err:
        load_products(folder)
    assert str(err.value).startswith(f"{folder / FILES[0]} is not valid JSON") and "\n" not in str(err.value)


def test_bad_record_names_the_file_and_record(generated, tmp_path):
    folder = _copy(generated, tmp_path / "d")
    records = json.loads((folder / FILES[0]).read_text(encoding="utf-8"))
    del records[3]["name"]
    records[5] = "oops"
    (folder / FILES[0]).write_text(json.dumps(records), encoding="utf-8")
    with pytest.raises(DataError, match=r"^items_shuffle.json record 3 \(asin B0\w{8}\) is malformed: KeyError 'name'"):
        load_products(folder)
    records[3] = records[4]
    (folder / FILES[0]).write_text(json.dumps(records), encoding="utf-8")
    with pytest.raises(DataError, match=r"^items_shuffle.json record 5 is a str"):
        load_products(folder)


def test_partial_folder_names_the_missing_file(generated, tmp_path):
    folder = _copy(generated, tmp_path / "d")
    (folder / FILES[1]).unlink()
    with pytest.raises(DataError, match="has no items_ins_v2_1000.json or items_ins_v2.json"):
        load_products(folder)
    (folder / FILES[2]).unlink()
    with pytest.raises(DataError, match="has no items_shuffle_1000.json or items_shuffle.json"):
        load_products(tmp_path)


def test_cli_generate_then_play_on_it(tmp_path):
    def run(*args):
        # the console script's path (python -m pawkit.cli would import a second pawkit.cli module)
        main = "import sys; from pawkit.cli import main; sys.exit(main(sys.argv[1:]))"
        return subprocess.run([sys.executable, "-c", main, *args], capture_output=True, text=True, timeout=300)

    out = run("webshop", "generate", "--products", "40", "--seed", "3", "--out", str(tmp_path / "shop"))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["products"] == 40
    again = run("webshop", "generate", "--products", "40", "--out", str(tmp_path / "shop"))
    assert again.returncode == 2 and again.stderr.strip().count("\n") == 0 and "--force" in again.stderr
    play = run("play", "--env", "webshop", "--policy", "expert", "--episodes", "5", "--json",
               f"env.options.data_dir={tmp_path / 'shop'}", "rollout.max_steps=15")  # WebShop's own limit, not the main job's 3
    assert play.returncode == 0, play.stderr
    assert json.loads(play.stdout.strip().splitlines()[-1])["success_rate"] == 1.0
    (tmp_path / "shop" / "items_ins_v2.json").write_text("{}}", encoding="utf-8")
    bad = run("play", "--env", "webshop", "--episodes", "1", f"env.options.data_dir={tmp_path / 'shop'}")
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0
    assert bad.stderr.startswith(f"error: {tmp_path / 'shop' / 'items_ins_v2.json'} is not valid JSON")
