"""Issue #18, kinds 3-5: damaged checkpoints, a full disk, non-finite weights.

Kind 3: checksums in the COMPLETE marker; resume falls back to the newest intact checkpoint with
one warning, or refuses in one line naming the file; pruning removes the marker first; leftover
temporary folders are cleaned at start. Kind 4: a full disk (simulated: the file object's write
raises ENOSPC after writing part of its bytes, so the torn tails are real) is one line with the
temporary folder removed; torn tails of append-only files are cut at the next open; auxiliary
writes warn and never cost a checkpoint. Kind 5: an update that leaves weights non-finite is
rolled back, and checkpoint.save refuses non-finite weights.
"""

from __future__ import annotations

import builtins
import errno
import json
from pathlib import Path

import pytest
import torch

from pawkit.config import load_config
from pawkit.protocol import UsageError
from pawkit.train import checkpoint, runlog
from pawkit.train.checkpoint import MARKER, NonFiniteModel, complete_checkpoints
from pawkit.train.rundir import RunDir
from pawkit.train.runlog import NoSpaceLeft, RunLogger, append_lines, repair_tail
from pawkit.train.trainer import TrainingStopped, train


def tiny(out: Path, *extra: str):
    return load_config("gridnav", overrides=[
        f"trainer.output_dir={out}", "model.name=tiny", "rollout.tasks_per_step=2", "rollout.group_size=2",
        "trainer.eval_every=0", "trainer.early_stop_success=null", "trainer.eval_before_after=false",
        "trainer.dump_trajectories_every=0", "trainer.save_every=1", *extra,
    ])


def full_disk_open(match: str, after_bytes: int = 10):
    """``open`` whose files with ``match`` in their path write ``after_bytes`` bytes, then ENOSPC."""
    real = builtins.open

    class Full:
        def __init__(self, fh):
            self.fh, self.left = fh, after_bytes

        def write(self, data):
            if len(data) > self.left:
                if self.left:
                    self.fh.write(data[: self.left])
                    self.fh.flush()
                self.left = 0
                raise OSError(errno.ENOSPC, "No space left on device")
            self.left -= len(data)
            return self.fh.write(data)

        def writelines(self, lines):
            for line in lines:
                self.write(line)

        def __getattr__(self, name):
            return getattr(self.fh, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

    def fake(file, mode="r", *args, **kwargs):
        fh = real(file, mode, *args, **kwargs)
        return Full(fh) if match in str(file) and any(m in mode for m in "wa") else fh

    return fake


# ------------------------------------------------------------------------------- kind 3


def test_damaged_newest_checkpoints_are_skipped_with_a_warning_and_resume_uses_the_newest_intact(tmp_path, capsys):
    train(tiny(tmp_path, "trainer.steps=3", "trainer.keep_checkpoints=3"), show_progress=False)
    marker = json.loads((complete_checkpoints(tmp_path)[-1] / MARKER).read_text())
    assert set(marker["files"]) >= {"model/model.safetensors", "trainer_state.pt", "config.json"}
    step2, step3 = complete_checkpoints(tmp_path)[1:]
    weights = step3 / "model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # truncated weights
    state = bytearray((step2 / "trainer_state.pt").read_bytes())
    state[len(state) // 2] ^= 0xFF  # one flipped byte: bit rot
    (step2 / "trainer_state.pt").write_bytes(bytes(state))
    resumed = train(tiny(tmp_path, "trainer.steps=3", "trainer.keep_checkpoints=3"), resume=True, show_progress=False)
    assert [m["step"] for m in resumed] == [2.0, 3.0]  # from step 1, the newest intact one
    err = capsys.readouterr().err
    assert f"skipped damaged checkpoint step-000003 ({weights} does not match its recorded sha256" in err
    assert "skipped damaged checkpoint step-000002" in err and "trainer_state.pt does not match" in err
    assert [p.name for p in complete_checkpoints(tmp_path)] == ["step-000001", "step-000002", "step-000003"]
    assert (tmp_path / "checkpoints" / "damaged-step-000003").is_dir()  # kept to inspect, never loaded
    assert checkpoint.verify(complete_checkpoints(tmp_path)[-1]) is None


def test_resume_refuses_in_one_line_naming_the_file_when_no_checkpoint_is_intact_or_rng_state_is_bad(tmp_path):
    train(tiny(tmp_path, "trainer.steps=1"), show_progress=False)
    (step1,) = complete_checkpoints(tmp_path)
    saved = torch.load(step1 / "trainer_state.pt", weights_only=False)
    saved["train_state"]["torch_rng"] = torch.zeros(3, dtype=torch.uint8)  # a bad RNG tensor, checksummed as written
    torch.save(saved, step1 / "trainer_state.pt")
    checkpoint._write_marker(step1, 1)
    with pytest.raises(UsageError, match=r"^cannot restore the RNG streams of .*step-000001/trainer_state.pt: ") as exc:
        train(tiny(tmp_path, "trainer.steps=2"), resume=True, show_progress=False)
    assert "\n" not in str(exc.value)
    (step1 / "trainer_state.pt").write_bytes(b"")  # truncated state: no intact checkpoint left
    with pytest.raises(UsageError, match=r"^cannot resume: .*step-000001/trainer_state.pt does not match its recorded sha256"):
        train(tiny(tmp_path, "trainer.steps=2"), resume=True, show_progress=False)


def test_a_kill_mid_prune_never_leaves_a_complete_half_deleted_checkpoint_and_leftovers_are_cleaned(tmp_path, monkeypatch):
    root = tmp_path / "checkpoints"
    old = root / "step-000001"
    (old / "model").mkdir(parents=True)
    (old / "trainer_state.pt").write_bytes(b"x")
    (old / MARKER).write_text('{"step": 1}')

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # the process dies inside the delete

    monkeypatch.setattr(checkpoint.shutil, "rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.remove(old)
    monkeypatch.undo()
    assert old.exists() and complete_checkpoints(tmp_path) == []  # marker went first
    (root / ".tmp-step-000002-99999").mkdir()  # a dead writer's temporary folder
    kept = root / "step-000003"
    kept.mkdir()
    (kept / "trainer_state.pt").write_bytes(b"x")
    (kept / MARKER).write_text('{"step": 3}')  # a marker from before checksums: trusted
    with RunDir(tiny(tmp_path), resume=True) as run:
        assert run.checkpoint == kept and list(root.iterdir()) == [kept]


# ------------------------------------------------------------------------------- kind 4


def test_a_full_disk_during_a_checkpoint_is_one_line_and_the_temp_folder_is_removed(tmp_path, monkeypatch):
    from pawkit.train.models import load_model

    model, tokenizer = load_model(tiny(tmp_path).model)
    checkpoint.save(tmp_path, 1, model, tokenizer, {"a": 1}, keep=2)
    monkeypatch.setattr(checkpoint, "open", full_disk_open("trainer_state.pt", 100), raising=False)
    with pytest.raises(NoSpaceLeft, match=r"^no space left on .*checkpoints while writing checkpoint step 2 \(partial "
                                          r"folder removed\); last complete checkpoint: step-000001$"):
        checkpoint.save(tmp_path, 2, model, tokenizer, {"a": torch.zeros(10000)}, keep=2)
    monkeypatch.undo()

    def iostream(*args, **kwargs):  # what torch's C++ writer said before (issue #18)
        raise RuntimeError("basic_ios::clear: iostream error")

    monkeypatch.setattr(checkpoint, "_write_model", iostream)
    with pytest.raises(NoSpaceLeft, match="no space left on"):
        checkpoint.save(tmp_path, 3, model, tokenizer, {}, keep=2)
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step-000001"]
    assert checkpoint.verify(tmp_path / "checkpoints" / "step-000001") is None


def test_torn_tails_are_cut_and_a_full_disk_in_metrics_leaves_no_torn_line(tmp_path, monkeypatch, capsys):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1.0}\n{"step": 2.0, "rollo')  # a real torn file
    assert repair_tail(path) == len('{"step": 2.0, "rollo') and path.read_text() == '{"step": 1.0}\n'
    assert "ended in a torn line" in capsys.readouterr().err
    path.write_text('{"step": 1.0, "x"')  # no newline at all
    with RunLogger(tmp_path, tiny(tmp_path), enabled=False) as log:
        log.step({"step": 1.0})
        monkeypatch.setattr(runlog, "open", full_disk_open("metrics.jsonl", 5), raising=False)
        with pytest.raises(NoSpaceLeft, match=r"^no space left on .* while writing metrics.jsonl \(step 2, not checkpointed"):
            log.step({"step": 2.0, "rollout/success_rate": 0.5})
    assert path.read_text() == '{"step": 1.0}\n'  # the partial line was cut back
    monkeypatch.undo()
    (tmp_path / "env_errors.log").write_text("step 1: boom\nstep 2: bo")
    monkeypatch.setattr(runlog, "open", full_disk_open("env_errors.log", 3), raising=False)
    assert append_lines(tmp_path / "env_errors.log", ["step 3: x\n"]) is False  # auxiliary: warns, goes on
    assert (tmp_path / "env_errors.log").read_text() == "step 1: boom\n"
    assert "could not write" in capsys.readouterr().err


def test_a_full_disk_while_dumping_trajectories_never_costs_the_checkpoint(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runlog, "open", full_disk_open("trajectories", 50), raising=False)
    train(tiny(tmp_path, "trainer.steps=1", "trainer.dump_trajectories_every=1"), show_progress=False)
    assert [p.name for p in complete_checkpoints(tmp_path)] == ["step-000001"]
    assert list((tmp_path / "trajectories").iterdir()) == []  # no half-written dump left
    assert "could not write" in capsys.readouterr().err


# ------------------------------------------------------------------------------- kind 5


def test_an_update_that_makes_weights_nonfinite_is_rolled_back_and_never_checkpointed(tmp_path, monkeypatch):
    from safetensors.torch import load_file

    real_step = torch.optim.AdamW.step

    def blows_up(self, *args, **kwargs):  # finite gradients, a step that leaves every weight inf (lr=.inf)
        out = real_step(self, *args, **kwargs)
        with torch.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    p.fill_(float("inf"))
        return out

    monkeypatch.setattr(torch.optim.AdamW, "step", blows_up)
    cfg = tiny(tmp_path, "trainer.steps=3", "trainer.max_nonfinite_in_a_row=2")
    with pytest.raises(TrainingStopped, match=r"^2 updates in a row had a non-finite loss, gradient or weights \(step 2\)"):
        train(cfg, show_progress=False)
    (only,) = complete_checkpoints(tmp_path)  # step 1, rolled back to the starting weights
    assert all(torch.isfinite(t).all() for t in load_file(only / "model" / "model.safetensors").values())
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(m["step"], m["loss/skipped_update"]) for m in lines] == [(1.0, 1.0)]


def test_checkpoint_save_refuses_nonfinite_weights(tmp_path):
    from pawkit.train.models import load_model

    model, tokenizer = load_model(tiny(tmp_path).model)
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] = float("nan")
    with pytest.raises(NonFiniteModel, match=r"^step 4: 1 parameter tensor\(s\) hold NaN/inf"):
        checkpoint.save(tmp_path, 4, model, tokenizer, {}, keep=2)
    assert not (tmp_path / "checkpoints").exists()
    guard = checkpoint.FiniteGuard(model, limit=0)  # too large to copy: stop instead of rolling back
    guard.before()
    with pytest.raises(NonFiniteModel, match="too large to keep a copy"):
        guard.after(type("S", (), {"step": 4, "nonfinite_skips": 0})(), {})
