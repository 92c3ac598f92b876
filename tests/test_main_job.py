"""The README's main job (`pawkit train --env webshop`) has the shape issue #24 asks for, checked
without running it (the run itself takes ~15 min on 2 cores; its measured numbers are in
docs/results.md, "The main job"): PaW on, the real pretrained model, a held-out before/after
evaluation on >= 50 episodes that are the same episodes before and after (greedy, fixed seed)."""

from pathlib import Path

from pawkit.config import load_config
from pawkit.rollout.envpool import build_env

ROOT = Path(__file__).resolve().parents[1]


def test_readme_main_command_is_the_webshop_job():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- main-command -->", 1)[1].split("```")[1]
    assert block.strip() == "bash scripts/install.sh && pawkit train --env webshop"


def test_main_job_config_shape():
    cfg = load_config("webshop")
    assert cfg.paw.enabled and cfg.paw.wm_loss == "cmae" and cfg.paw.selector == "entropy"
    assert cfg.model.name == "smollm2-135m" and cfg.model.lora.enabled  # the pretrained model, not the tiny one
    t = cfg.trainer
    assert t.eval_before_after and t.eval_episodes >= 50 and t.steps >= 1
    assert cfg.rollout.eval_temperature == 0  # greedy: the same 50 episodes before and after, reproducible
    assert cfg.env.eval_split != cfg.env.train_split  # held out
    env = build_env(cfg.env.name, cfg.env.options)
    train = {task.id for task in env.tasks(cfg.env.train_split)}
    held_out = [task.id for task in env.tasks(cfg.env.eval_split)][: t.eval_episodes]
    assert len(held_out) == t.eval_episodes and not train & set(held_out)  # enough tasks, none trained on
    # one evaluation plays all its episodes at once (the CPU's cheapest shape)
    assert t.eval_batch_episodes is not None and t.eval_batch_episodes >= t.eval_episodes
