import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest
import torch

# Two threads on CI's two cores; PAWKIT_TEST_THREADS=1 when running suites side by side
# (oversubscribed OpenMP threads slow torch down by 10x, not 2x).
torch.set_num_threads(int(os.environ.get("PAWKIT_TEST_THREADS", max(1, min(2, os.cpu_count() or 1)))))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Generated data goes to one per-session cache, never the user's home."""
    cache = tmp_path_factory.getbasetemp() / "pawkit-cache"
    monkeypatch.setenv("PAWKIT_CACHE", os.environ.get("PAWKIT_TEST_CACHE", str(cache)))
