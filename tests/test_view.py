"""`pawkit view`: the WM view stored at dump time, its recomputation from a checkpoint, and the
exported page rendered by a real headless chromium (Debian's; scripts/install.sh installs it)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request

import pytest

from pawkit.cli import main
from pawkit.config import load_config
from pawkit.train.trainer import train

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("viewrun")
    cfg = load_config("gridnav", overrides=[
        f"trainer.output_dir={out}", "trainer.steps=3", "paw.enabled=true", "rollout.tasks_per_step=2",
        "rollout.group_size=2", "trainer.eval_every=0", "trainer.early_stop_success=null",
        "trainer.eval_before_after=false", "trainer.dump_trajectories_every=1", "trainer.save_every=3"])
    train(cfg, show_progress=False)
    return out


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_dump_stores_one_view_per_episode_with_paw_facts(run):
    for step in (1, 2, 3):
        episodes = read(run / "trajectories" / f"step-{step:06d}.jsonl")
        views = read(run / "trajectories" / f"step-{step:06d}.view.jsonl")
        assert len(episodes) == len(views) == 4
        for e, v in zip(episodes, views):
            assert len(v["transitions"]) == len(e["transitions"])
            for t, tv in zip(e["transitions"], v["transitions"]):
                assert set(tv) == {"advantage", "entropy", "selected", "lambda", "wm"}
                wm = tv["wm"]
                assert len(wm["tokens"]) == len(wm["p"]) == len(wm["correct"]) > 0
                assert "".join(wm["tokens"]).startswith("\nNext observation:\n")  # paw.delimiter, then o_{t+1}
                assert "".join(wm["tokens"]) == ("\nNext observation:\n" + t["next_observation"]["text"])[: len(wm["tokens"])]
                assert all(0.0 < p < 1.0 for p in wm["p"])


def test_view_model_recomputes_the_stored_view(run, tmp_path):
    """The step-3 dump rescored by the step-3 checkpoint (the same weights) gives the stored numbers."""
    from pawkit.commands.view import rescored_views

    ckpt = run / "checkpoints" / "step-000003" / "model"
    fresh = rescored_views(run, str(ckpt))[3]
    stored = read(run / "trajectories" / "step-000003.view.jsonl")
    assert len(fresh) == len(stored) == 4
    for a, b in zip(fresh, stored):
        for ta, tb in zip(a["transitions"], b["transitions"]):
            assert ta["wm"]["tokens"] == tb["wm"]["tokens"]
            assert max(abs(x - y) for x, y in zip(ta["wm"]["p"], tb["wm"]["p"])) <= 1e-5
            assert ta["wm"]["predicted"] == tb["wm"]["predicted"]


def test_not_a_run_folder_is_one_line(tmp_path, capsys):
    assert main(["view", str(tmp_path), "--export", str(tmp_path / "x.html")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path} is not a pawkit run folder (no metrics.jsonl or trajectories/)"


def test_serves_on_loopback(run, tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "pawkit.cli", "view", str(run), "--port", "0"],
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        assert line.startswith("pawkit view: http://127.0.0.1:")
        url = line.split()[2]
        page = urllib.request.urlopen(url, timeout=20).read().decode()
        assert "<title>pawkit view: " in page and "Plotly" in page
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (scripts/install.sh installs it as root)")
def test_exported_page_renders_in_headless_chromium(run, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    page_file = tmp_path / "view.html"
    assert main(["view", str(run), "--export", str(page_file)]) == 0
    errors: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": 1300})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(page_file.as_uri())
        page.wait_for_selector(".chart .main-svg", timeout=20000)
        assert page.inner_text("#episode-count") == "4 episodes"
        assert page.locator("#step option").count() == 3
        assert page.locator(".chart").count() == 7  # every curve of a PaW run
        assert page.locator(".chart .scatterlayer .trace").count() >= 7
        tokens = page.locator(".wm-real .tok")
        assert tokens.count() > 20
        colours = set(page.eval_on_selector_all(".wm-real .tok", "els => els.map(e => getComputedStyle(e).backgroundColor)"))
        assert len(colours) > 3 and "rgba(0, 0, 0, 0)" not in colours  # shaded by p
        page.select_option("#episode", "1")
        assert page.inner_text("#episode-head").startswith("env gridnav")
        shot = tmp_path / "view.png"
        page.screenshot(path=str(shot), full_page=False)
        browser.close()
    assert errors == []
    from PIL import Image

    image = Image.open(shot).convert("RGB")
    assert image.size == (1100, 1300)
    colours = image.getcolors(maxcolors=1 << 20)
    assert len(colours) > 100 and max(c for c, _ in colours) < 0.97 * 1100 * 1300  # not blank
