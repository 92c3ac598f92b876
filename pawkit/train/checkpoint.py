"""Atomic, verified, HF-loadable checkpoints with the trainer state needed for an exact resume.

Layout: ``<output_dir>/checkpoints/step-000010/{model/, trainer_state.pt, config.json, COMPLETE}``.
A checkpoint is written to a temporary folder and renamed into place; only folders holding
``COMPLETE`` are ever loaded, so a kill at any moment cannot yield a half-written resume. The
marker lists the sha256 of every file of the checkpoint (``files``); ``resume_point`` verifies
them and falls back to the newest intact checkpoint. Deleting one removes the marker first, so
a kill mid-delete leaves a folder that is never loaded. A checkpoint whose trainable weights are
not all finite is refused (``NonFiniteModel``), and a full disk is one line (``NoSpaceLeft``)
with the temporary folder removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import torch

from pawkit.protocol import UsageError
from pawkit.train.models import save_model
from pawkit.train.runlog import NoSpaceLeft, is_disk_full

MARKER = "COMPLETE"
CONFIG = "config.json"
DAMAGED_PREFIX = "damaged-"


class NonFiniteModel(RuntimeError):
    """The model holds NaN/inf weights: it is never written as a complete checkpoint."""


def checkpoint_root(output_dir: str | Path) -> Path:
    return Path(output_dir) / "checkpoints"


def save(
    output_dir: str | Path, step: int, model, tokenizer, state: dict[str, Any], keep: int,
    config: dict[str, Any] | None = None,
) -> Path:
    """Write checkpoint ``step`` (``config``: the run's config at that step, for resume checks)."""
    bad = nonfinite_parameters(model)
    if bad:
        raise NonFiniteModel(
            f"step {step}: {len(bad)} parameter tensor(s) hold NaN/inf (first: {bad[0]}); not saved, "
            f"the last complete checkpoint in {checkpoint_root(output_dir)} is kept"
        )
    root = checkpoint_root(output_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:06d}"
    tmp = root / f".tmp-step-{step:06d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _write_model(tmp, model, tokenizer, final)
        with open(tmp / "trainer_state.pt", "wb") as fh:  # a Python file: a full disk is an OSError
            torch.save(state, fh)
        if config is not None:
            (tmp / CONFIG).write_text(json.dumps(config, indent=1))
        _fsync_dir(tmp)
        _write_marker(tmp, step)
    except BaseException as exc:
        full = isinstance(exc, Exception) and is_disk_full(exc, root)
        shutil.rmtree(tmp, ignore_errors=True)
        if full:
            last = latest(output_dir)
            raise NoSpaceLeft(
                f"no space left on {root} while writing checkpoint step {step} (partial folder removed); "
                f"last complete checkpoint: {last.name if last else 'none'}"
            ) from None
        raise
    if final.exists():
        remove(final)
    os.rename(tmp, final)
    _fsync_path(root)
    for old in complete_checkpoints(output_dir)[:-keep]:
        remove(old)
    return final


def _write_model(folder: Path, model, tokenizer, final: Path) -> None:
    """``model/``: loadable offline by transformers, or PEFT for LoRA (pawkit.train.models.save_model)."""
    save_model(model, tokenizer, folder / "model", final / "model")


def nonfinite_parameters(model) -> list[str]:
    """Names of trainable parameters holding NaN/inf (frozen ones cannot change in training)."""
    return [n for n, p in model.named_parameters() if p.requires_grad and not bool(torch.isfinite(p).all())]


def remove(path: Path) -> None:
    """Delete a checkpoint: its marker first (made durable), so a kill mid-delete leaves a
    folder that is never loaded and is cleaned at the next start."""
    marker = path / MARKER
    if marker.exists():
        marker.unlink()
        _fsync_path(path)
    shutil.rmtree(path, ignore_errors=True)


# ------------------------------------------------------------------ checksums and resume


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _manifest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): _sha256(p)
        for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MARKER
    }


def _write_marker(folder: Path, step: int) -> None:
    with open(folder / MARKER, "w") as fh:
        fh.write(json.dumps({"step": step, "files": _manifest(folder)}))
        fh.flush()
        os.fsync(fh.fileno())


def verify(path: Path) -> str | None:
    """None if ``path`` is intact, else what is wrong, naming the file. A marker without a
    file list (written before checksums were recorded) is trusted as it is."""
    try:
        marker = json.loads((path / MARKER).read_text())
        files = marker.get("files") if isinstance(marker, dict) else None
    except (OSError, ValueError):
        return f"{path / MARKER} is unreadable"
    if files is None:
        return None if (path / "trainer_state.pt").exists() else f"{path / 'trainer_state.pt'} is missing"
    for name, expected in files.items():
        file = path / name
        if not file.is_file():
            return f"{file} is missing"
        if _sha256(file) != expected:
            return f"{file} does not match its recorded sha256 (truncated or corrupted)"
    return None


def resume_point(output_dir: str | Path) -> tuple[Path | None, list[tuple[Path, str]]]:
    """The newest intact complete checkpoint, and the newer ones skipped with their problem."""
    skipped: list[tuple[Path, str]] = []
    for path in reversed(complete_checkpoints(output_dir)):
        problem = verify(path)
        if problem is None:
            return path, skipped
        skipped.append((path, problem))
    return None, skipped


def set_aside(path: Path) -> Path:
    """Rename a damaged checkpoint to ``damaged-step-N`` (kept to inspect, never loaded)."""
    target = path.with_name(DAMAGED_PREFIX + path.name)
    if target.exists():
        shutil.rmtree(target, ignore_errors=True)
    os.rename(path, target)
    return target


def clean_leftovers(output_dir: str | Path) -> list[Path]:
    """Delete temporary folders of dead writers and step folders without a marker (a kill mid-
    write or mid-delete). Only call while holding the run directory's lock."""
    root = checkpoint_root(output_dir)
    if not root.exists():
        return []
    gone = [p for p in root.iterdir() if p.is_dir() and (
        p.name.startswith(".tmp-step-") or (p.name.startswith("step-") and not (p / MARKER).exists()))]
    for p in gone:
        shutil.rmtree(p, ignore_errors=True)
    return gone


def complete_checkpoints(output_dir: str | Path) -> list[Path]:
    root = checkpoint_root(output_dir)
    if not root.exists():
        return []
    return sorted(p for p in root.glob("step-*") if (p / MARKER).exists())


def latest(output_dir: str | Path) -> Path | None:
    found = complete_checkpoints(output_dir)
    return found[-1] if found else None


def load_state(path: Path) -> dict[str, Any]:
    file = path / "trainer_state.pt"
    try:
        return torch.load(file, weights_only=False)
    except Exception as exc:
        raise UsageError(f"cannot load {file}: {type(exc).__name__}: {_first_line(exc)}") from None


def saved_config(path: Path) -> dict[str, Any] | None:
    """The run config recorded in checkpoint ``path`` (None for checkpoints without one)."""
    file = path / CONFIG
    return json.loads(file.read_text()) if file.exists() else None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:200]


# Trainable parameters up to this many elements are copied before each step, so an update that
# makes them non-finite is rolled back (LoRA, small models: cheap); a larger full fine-tune stops.
SNAPSHOT_LIMIT = 256_000_000


# What torch says when finite-but-huge weights (e.g. trainer.lr=1e20) overflow downstream.
DIVERGED = ("probability tensor contains either `inf`, `nan` or element < 0", "probability tensor contains either inf",
            "cannot be converted to type float without overflow")


def divergence(exc: BaseException) -> str | None:
    """A one-line reason when ``exc`` is torch overflowing on diverged weights, else None."""
    text = str(exc)
    if isinstance(exc, RuntimeError) and any(m in text for m in DIVERGED):
        return f"the model diverged: torch overflowed ({text.splitlines()[0][:120]}); lower trainer.lr"
    return None


class FiniteGuard:
    """Parameters, not only gradients: a step that leaves a trainable weight NaN/inf (e.g. a
    huge lr with finite gradients) is rolled back to the copy taken before it."""

    def __init__(self, model, limit: int = SNAPSHOT_LIMIT):
        self.model = model
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.enabled = sum(p.numel() for p in self.params) <= limit
        self.copy: list[torch.Tensor] | None = None

    def before(self) -> None:
        if self.enabled:
            with torch.no_grad():
                self.copy = [p.detach().clone() for p in self.params]

    def after(self, state, metrics: dict[str, float], warn: bool = True) -> bool:
        """True if every trainable weight is finite; else rolls back (or raises), counts the step
        as a skipped update (``loss/skipped_update`` = 1) and returns False."""
        if all(bool(torch.isfinite(p).all()) for p in self.params):
            return True
        if self.copy is None:
            raise NonFiniteModel(
                f"step {state.step} made trainable weights non-finite and the model is too large to keep a copy "
                f"(> {SNAPSHOT_LIMIT} trainable elements); the last complete checkpoint is kept"
            )
        with torch.no_grad():
            for p, saved in zip(self.params, self.copy):
                p.copy_(saved)
        metrics["loss/skipped_update"] = 1.0
        state.nonfinite_skips += 1
        if warn:
            print(f"warning: step {state.step}: the update made weights non-finite; rolled back", file=sys.stderr)
        return False


def _fsync_dir(path: Path) -> None:
    for file in path.rglob("*"):
        if file.is_file():
            with open(file, "rb") as fh:
                os.fsync(fh.fileno())
    _fsync_path(path)


def _fsync_path(path: Path) -> None:
    """Make a folder's entries (renames, deletions) durable."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
