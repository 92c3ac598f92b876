"""Checkpoints outside pawkit: plain PEFT loads a LoRA checkpoint offline, with no warning (#26).

A LoRA adapter records its base as a real folder: the converted SmolLM2 in the pawkit cache, or
for ``tiny`` (built in code, no folder) the base weights saved beside it in ``model/base_model/``.
The one warning let through is transformers 5's ``is_gradient_checkpointing`` deprecation, which
PEFT itself triggers on every load (upstream; pawkit's CLI filters it too).
"""

import json
import logging
import shutil
import warnings
from pathlib import Path

import pytest
import torch

from pawkit.config import load_config
from pawkit.train import checkpoint
from pawkit.train.models import BASE_FOLDER, load_model

UPSTREAM = "`is_gradient_checkpointing` is deprecated"


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.records = []

    def emit(self, record):
        self.records.append(record)


def _quietly(fn):
    """fn()'s result and every warning and transformers/peft/huggingface_hub log record >= WARNING."""
    handler = _Records()
    loggers = [logging.getLogger(n) for n in ("transformers", "peft", "huggingface_hub")]
    for lg in loggers:
        lg.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = fn()
    finally:
        for lg in loggers:
            lg.removeHandler(handler)
    messages = [str(w.message) for w in caught if UPSTREAM not in str(w.message)]
    return result, messages + [r.getMessage() for r in handler.records]


def _lora_checkpoint(tmp_path, name):
    cfg = load_config("gridnav", overrides=[f"model.name={name}", "model.lora.enabled=true", "model.lora.r=4"])
    model, tokenizer = load_model(cfg.model)
    with torch.no_grad():  # a trained adapter (a fresh one is the identity)
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.02 * torch.randn_like(p))
    path, problems = _quietly(lambda: checkpoint.save(tmp_path / "run", 2, model, tokenizer, {"step": 2}, keep=2))
    assert problems == [], problems  # no hub lookup for a built-in name ("Unable to fetch remote file …")
    return model.eval(), cfg, path / "model"


def _check_plain_peft_loads(model, cfg, folder):
    from peft import AutoPeftModelForCausalLM

    recorded = json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"]
    assert recorded and (Path(recorded) / "config.json").exists()  # a real folder, not a built-in name
    peft_model, problems = _quietly(lambda: AutoPeftModelForCausalLM.from_pretrained(str(folder)))
    assert problems == [], problems
    ids = torch.tensor([[5, 17, 42, 99, 7, 3]])
    with torch.no_grad():
        expected = model(ids).logits
        assert torch.equal(peft_model.eval()(ids).logits, expected)
        ours, _ = load_model(cfg.model.model_copy(update={"name": str(folder)}))  # pawkit's own loader
        assert torch.equal(ours.eval()(ids).logits, expected)
    return recorded


def test_tiny_lora_checkpoint_loads_with_plain_peft_offline_without_warnings(tmp_path):
    model, cfg, folder = _lora_checkpoint(tmp_path, "tiny")
    recorded = _check_plain_peft_loads(model, cfg, folder)
    assert recorded == str((folder / BASE_FOLDER).resolve())  # the final folder, not the temporary one
    assert (folder / BASE_FOLDER / "config.json").exists()

    moved = tmp_path / "elsewhere"  # a copied run folder: pawkit finds the base beside the adapter
    shutil.copytree(tmp_path / "run", moved)
    shutil.rmtree(tmp_path / "run")
    ours, _ = load_model(cfg.model.model_copy(update={"name": str(moved / "checkpoints/step-000002/model")}))
    ids = torch.tensor([[1, 2, 3]])
    with torch.no_grad():
        assert torch.equal(ours.eval()(ids).logits, model(ids).logits)


def test_a_cached_builtin_base_is_recorded_as_its_folder(tmp_path, monkeypatch):
    """The smollm2-135m code path with a stand-in: a small HF model where its conversion goes."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("PAWKIT_CACHE", str(cache))
    stand_in, tokenizer = load_model(load_config("gridnav", overrides=["model.name=tiny"]).model)
    stand_in.save_pretrained(cache / "models" / "smollm2-135m")
    tokenizer.save_pretrained(cache / "models" / "smollm2-135m")
    model, cfg, folder = _lora_checkpoint(tmp_path, "smollm2-135m")
    recorded = _check_plain_peft_loads(model, cfg, folder)
    assert recorded == str((cache / "models" / "smollm2-135m").resolve())
    assert not (folder / BASE_FOLDER).exists()


@pytest.mark.slow  # converts SmolLM2 from the GGUF (~60 s) unless PAWKIT_TEST_CACHE holds it already
def test_smollm2_lora_checkpoint_loads_with_plain_peft_offline_without_warnings(tmp_path):
    model, cfg, folder = _lora_checkpoint(tmp_path, "smollm2-135m")
    recorded = _check_plain_peft_loads(model, cfg, folder)
    assert recorded.endswith("models/smollm2-135m")


def test_checkpoints_written_before_26_still_load(tmp_path):
    """They recorded the built-in name itself; pawkit maps it back."""
    model, cfg, folder = _lora_checkpoint(tmp_path, "tiny")
    config = json.loads((folder / "adapter_config.json").read_text())
    (folder / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": "tiny"}))
    shutil.rmtree(folder / BASE_FOLDER)
    ours, _ = load_model(cfg.model.model_copy(update={"name": str(folder)}))
    ids = torch.tensor([[1, 2, 3]])
    with torch.no_grad():
        assert torch.equal(ours.eval()(ids).logits, model(ids).logits)


# ------------------------------------------------------------------ model paths, eval progress, escaping (#26)


def _cli(*args, cwd=None):
    import os
    import subprocess
    import sys

    env = {**os.environ, "COLUMNS": "250"}  # rich wraps table cells at 80 columns otherwise
    return subprocess.run(
        [sys.executable, "-m", "pawkit.cli", *args], capture_output=True, text=True, timeout=300, cwd=cwd, env=env
    )


def test_a_missing_model_path_is_named_with_the_checkpoints_that_exist(tmp_path, monkeypatch, capsys):
    from pawkit import cli

    model, cfg, folder = _lora_checkpoint(tmp_path, "tiny")  # tmp/run/checkpoints/step-000002/model
    # one real process: exit code 2 and a one-line error, no traceback
    out = _cli("eval", "--env", "gridnav", "--model", "run/checkpoints/step-000010/model", cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.strip().count("\n") == 0, out.stderr
    assert out.stderr.startswith("error: model path does not exist: run/checkpoints/step-000010/model")
    assert "step-000002/model" in out.stderr and "Repo id" not in out.stderr
    # the rest in process (a subprocess costs a torch import each): the same main() the console script runs
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notamodel").mkdir()
    (tmp_path / "notamodel" / "notes.txt").write_text("hi")
    capsys.readouterr()
    assert cli.main(["eval", "--env", "gridnav", "--model", "notamodel"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: not a model folder: notamodel (no config.json or adapter_config.json in it)", err
    # a run folder or a step folder given for its model/: evaluated, and said so on stderr (plain progress lines)
    for given in ("run/checkpoints/step-000002",):  # a run folder: checkpoint_model, test below
        code = cli.main(["eval", "--env", "gridnav", "--model", given, "--episodes", "4", "--json", "rollout.max_steps=3"])
        out = capsys.readouterr()
        assert code == 0, out.err
        assert f"{given} is a " in out.err and "step-000002/model" in out.err
        assert json.loads(out.out.strip().splitlines()[-1])["episodes"] == 4
        assert "eval gridnav (test): 4/4 episodes" in out.err  # item 3: progress on a non-TTY stderr


def test_the_trainer_refuses_a_step_folder_naming_its_model_folder(tmp_path):
    from pawkit.protocol import UsageError

    model, cfg, folder = _lora_checkpoint(tmp_path, "tiny")
    from pawkit.train.models import checkpoint_model

    with pytest.raises(UsageError, match="pass its model folder: .*step-000002/model"):
        load_model(cfg.model.model_copy(update={"name": str(folder.parent)}))
    assert checkpoint_model(tmp_path / "run") == (folder, "a run folder")  # pawkit eval --model <run> evaluates it


def test_eval_prints_plain_progress_lines_on_a_non_tty_stderr(capsys):
    from pawkit.train.evaluate import evaluate

    cfg = load_config("gridnav", overrides=["model.name=tiny", "rollout.max_steps=2", "rollout.tasks_per_step=2", "rollout.group_size=2"])
    evaluate(cfg, episodes=10, show_progress=True)  # 4 slots: chunks of 4, 4, 2
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("eval gridnav")]
    assert lines and lines[-1] == "eval gridnav (test): 10/10 episodes", lines
    counts = [int(x.split(": ")[1].split("/")[0]) for x in lines]
    assert counts == sorted(counts) and len(counts) >= 3  # every ~10 %, at least once per chunk


def test_plugins_table_keeps_brackets_of_descriptions():
    out = _cli("plugins")
    assert out.returncode == 0, out.stderr
    row = next(line for line in out.stdout.splitlines() if "cmae" in line)
    assert "[p ≤ ρ]" in row, row
