"""The one-time SmolLM2 conversion (pawkit/train/models.py: smollm2_folder) leaves the seeded
RNG streams where they were: the first run after an install samples what every later run does."""

import random

import numpy as np
import torch

from pawkit.train.models import smollm2_folder
from pawkit.train.state import seed_everything


def draws():
    return torch.rand(3).tolist(), random.random(), float(np.random.rand())


def test_converting_smollm2_draws_nothing_from_the_seeded_streams(tmp_path, monkeypatch):
    seed_everything(0)
    expected = draws()
    monkeypatch.setenv("PAWKIT_CACHE", str(tmp_path))
    seed_everything(0)
    folder = smollm2_folder()  # converts: from_config's random init runs here
    assert folder == tmp_path / "models" / "smollm2-135m" and (folder / "config.json").exists()
    assert draws() == expected
