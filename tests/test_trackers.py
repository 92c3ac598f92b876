"""``trainer.report_to``: every backend writes its files in the run folder; an unknown name or a
missing package is one line before the model loads."""

from __future__ import annotations

import importlib.util

import pytest

from pawkit.config import load_config
from pawkit.protocol import UsageError
from pawkit.train import trackers
from pawkit.train.trackers import TRACKERS, check_report_to, register_tracker
from pawkit.train.trainer import train


def cfg(tmp_path, *extra):
    return load_config("gridnav", overrides=[
        f"trainer.output_dir={tmp_path}", "trainer.steps=1", "rollout.tasks_per_step=1", "rollout.group_size=2",
        "trainer.eval_every=0", "trainer.early_stop_success=null", "trainer.eval_before_after=false",
        "trainer.dump_trajectories_every=0", *extra])


def test_every_backend_writes_its_files(tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    pytest.importorskip("wandb")
    if importlib.util.find_spec("trackio") is None:  # not imported: TRACKIO_DIR is read at its import
        pytest.skip("trackio is not installed")
    monkeypatch.delenv("WANDB_MODE", raising=False)  # offline is the default
    monkeypatch.delenv("TRACKIO_DIR", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    train(cfg(tmp_path, "trainer.report_to=[jsonl,tensorboard,wandb,trackio]"), show_progress=False)
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 1
    assert len(list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))) == 1
    offline = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(offline) == 1 and list(offline[0].glob("run-*.wandb"))
    assert list((tmp_path / "trackio").rglob("*.db"))


def test_old_tensorboard_key_still_works(tmp_path):
    pytest.importorskip("tensorboard")
    assert check_report_to(cfg(tmp_path, "trainer.tensorboard=true")) == ["jsonl", "tensorboard"]
    assert check_report_to(cfg(tmp_path)) == ["jsonl"]


def test_unknown_backend_is_one_line(tmp_path):
    with pytest.raises(UsageError) as err:
        train(cfg(tmp_path, "trainer.report_to=[mlflow]"), show_progress=False)
    assert str(err.value) == "unknown trainer.report_to backend 'mlflow'; known: jsonl, tensorboard, wandb, trackio"
    assert not (tmp_path / "checkpoints").exists()


def test_missing_package_gives_its_install_hint(tmp_path, monkeypatch):
    """A backend whose package is not installed (here: one that cannot be) fails with its hint."""
    monkeypatch.setattr(trackers, "TRACKERS", dict(TRACKERS))
    register_tracker("nope", "pawkit_no_such_package", "pip install pawkit-nope")(lambda out, config: None)
    with pytest.raises(UsageError) as err:
        check_report_to(cfg(tmp_path, "trainer.report_to=[nope]"))
    assert str(err.value) == "trainer.report_to=nope needs the pawkit_no_such_package package: pip install pawkit-nope"
