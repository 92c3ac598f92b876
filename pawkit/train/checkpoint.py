"""Atomic, HF-loadable checkpoints with the trainer state needed for an exact resume.

Layout: ``<output_dir>/checkpoints/step-000010/{model/, trainer_state.pt, COMPLETE}``. A
checkpoint is written to a temporary folder and renamed into place; only folders holding
``COMPLETE`` are ever loaded, so a kill at any moment cannot yield a half-written resume.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

MARKER = "COMPLETE"


def checkpoint_root(output_dir: str | Path) -> Path:
    return Path(output_dir) / "checkpoints"


def save(output_dir: str | Path, step: int, model, tokenizer, state: dict[str, Any], keep: int) -> Path:
    root = checkpoint_root(output_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:06d}"
    tmp = root / f".tmp-step-{step:06d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp / "model")
    tokenizer.save_pretrained(tmp / "model")
    torch.save(state, tmp / "trainer_state.pt")
    (tmp / MARKER).write_text(json.dumps({"step": step}))
    _fsync_dir(tmp)
    if final.exists():
        shutil.rmtree(final)
    os.rename(tmp, final)
    _fsync_dir(root)
    for old in complete_checkpoints(output_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def complete_checkpoints(output_dir: str | Path) -> list[Path]:
    root = checkpoint_root(output_dir)
    if not root.exists():
        return []
    return sorted(p for p in root.glob("step-*") if (p / MARKER).exists())


def latest(output_dir: str | Path) -> Path | None:
    found = complete_checkpoints(output_dir)
    return found[-1] if found else None


def load_state(path: Path) -> dict[str, Any]:
    return torch.load(path / "trainer_state.pt", weights_only=False)


def _fsync_dir(path: Path) -> None:
    for file in path.rglob("*"):
        if file.is_file():
            with open(file, "rb") as fh:
                os.fsync(fh.fileno())
