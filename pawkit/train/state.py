"""What a run carries between steps and processes: the resumable training state (step count,
RNG streams), seeding, the SIGINT/SIGTERM stop request, and the run's ``run.json``.
"""

from __future__ import annotations

import contextlib
import json
import platform
import random
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from pawkit import __version__
from pawkit.config import Config, dump_config

RANK_SEED_STRIDE = 100_003


@dataclass
class TrainState:
    """Everything a resumed run needs to continue exactly: the step and every random stream.

    ``cuda_devices`` are the CUDA devices this process samples on (the model's; empty on a
    CPU): their generators are saved and restored with the CPU's, Python's and numpy's global
    ones, since generation draws on the model's device.
    """

    step: int = 0
    task_rng: random.Random = field(default_factory=random.Random)
    selector_gen: torch.Generator = field(default_factory=torch.Generator)
    nonfinite_skips: int = 0
    cuda_devices: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "task_rng": self.task_rng.getstate(),
            "selector_gen": self.selector_gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": [torch.cuda.get_rng_state(i) for i in self.cuda_devices],
            "python_rng": random.getstate(),
            "numpy_rng": _numpy_rng_state(),
            "nonfinite_skips": self.nonfinite_skips,
        }

    def load(self, data: dict[str, Any]) -> None:
        self.step = data["step"]
        self.task_rng.setstate(data["task_rng"])
        self.selector_gen.set_state(data["selector_gen"])
        torch.set_rng_state(data["torch_rng"])
        # By position: the k-th device this process trains on gets the k-th saved state, so a
        # run moved from cuda:0 to cuda:1 keeps its stream. A checkpoint from a CPU run (or an
        # older one) has none: the device generators keep their seeding.
        for device, state in zip(self.cuda_devices, data.get("cuda_rng", [])):
            torch.cuda.set_rng_state(state, device)
        random.setstate(data["python_rng"])
        _set_numpy_rng_state(data.get("numpy_rng"))
        self.nonfinite_skips = data.get("nonfinite_skips", 0)


def cuda_devices(model: torch.nn.Module) -> list[int]:
    """The CUDA device indices holding ``model``'s parameters (where its sampling draws)."""
    return sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})


def _numpy_rng_state():
    try:
        import numpy as np
    except ImportError:
        return None
    return np.random.get_state()


def _set_numpy_rng_state(state) -> None:
    if state is None:
        return
    import numpy as np

    np.random.set_state(state)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)  # CPU and every CUDA device
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:
        pass


@contextlib.contextmanager
def rng_preserved(devices: list[int] = ()):
    """Evaluation must not shift the training RNG streams (exact resume depends on them): torch's
    CPU generator and those of the CUDA ``devices`` (``torch.random.fork_rng``), Python's and
    numpy's global generators (an env may draw from them) come back as they were."""
    python, numpy_state = random.getstate(), _numpy_rng_state()
    try:
        with torch.random.fork_rng(devices=list(devices)):
            yield
    finally:
        random.setstate(python)
        _set_numpy_rng_state(numpy_state)


class StopRequest:
    """SIGINT/SIGTERM ask the loop to checkpoint at the next safe point (between steps) and exit."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:
        if self.requested:  # a second signal: the user really wants out now
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def write_run_info(config: Config, out: Path) -> None:
    import transformers

    out.mkdir(parents=True, exist_ok=True)
    info = {
        "config": config.model_dump(mode="json"),
        "versions": {"pawkit": __version__, "torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version()},
    }
    (out / "run.json").write_text(json.dumps(info, indent=2))
    (out / "config.yaml").write_text(dump_config(config))
