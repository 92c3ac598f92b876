"""benchmarks/gpu_check.sh end to end in its CPU dry run (a tiny Qwen2 on webshop, PaW off then on).

The dry run imports pawkit through the script's temporary links (``--shim``), the path a GPU
machine without a pip-installed pawkit takes, and writes its output to ``$OUT``.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"
ROWS = [
    "rollout tokens/s", "rollout seconds per step", "update seconds per step", "whole step seconds",
    "action tokens trained per step", "WM tokens trained per step", "peak memory, process RSS (MB)",
    "whole step PaW on/off", "update PaW on/off", "trained tokens (action + WM) / action, PaW on", "CPU fallback",
]
NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")


def env_for(tmp_path: Path) -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OUT=str(tmp_path / "out"), TMPDIR=str(tmp_path))


def table_rows(output: str) -> dict[str, str]:
    rows = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and cells[0] not in ("quantity", "ratio"):
            rows[cells[0]] = " | ".join(cells[1:])
    return rows


@pytest.mark.skipif(not (ROOT / "pawkit").is_dir(), reason="needs the repository checkout")
def test_dry_run_prints_every_row_with_finite_numbers(tmp_path):
    proc = subprocess.run(["bash", str(SCRIPT), "--dry-run", "--shim"], check=False, cwd=ROOT, env=env_for(tmp_path),
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = table_rows(proc.stdout)
    assert list(rows) == ROWS
    for label, cells in rows.items():
        numbers = [float(n) for n in NUMBER.findall(cells)]
        assert numbers and all(math.isfinite(n) for n in numbers), (label, cells)
        assert not re.search(r"\b(nan|inf)\b", cells, re.IGNORECASE), (label, cells)
    off, on = (float(x) for x in rows["WM tokens trained per step"].split(" | "))
    assert off == 0 and on > 0  # PaW on trains next-observation tokens, PaW off none
    assert float(rows["whole step PaW on/off"]) > 0
    # Dry run: the model is on the CPU as expected, every element of it, and the watch saw CPU float ops.
    fallback = re.fullmatch(r"dry run, model on cpu as expected: (\d+) of (\d+) parameter/buffer elements on cpu; "
                            r"(\d+) CPU float ops of >= 65536 elements in one PaW step \(expected on cpu\)", rows["CPU fallback"])
    assert fallback, rows["CPU fallback"]
    assert fallback[1] == fallback[2] and int(fallback[1]) > 0 and int(fallback[3]) > 0
    assert "pawkit through temporary links" in proc.stdout
    assert (tmp_path / "out" / "gpu_check.txt").read_text().count("| CPU fallback |") == 1
    assert not list(tmp_path.glob("pawkit-gpu-check*")), "temporary folders left behind"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_without_a_gpu_it_exits_1_with_one_clear_line(tmp_path):
    proc = subprocess.run(["bash", str(SCRIPT)], check=False, cwd=ROOT, env=env_for(tmp_path), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "error: torch sees no CUDA device (torch.cuda.is_available() is False)" in proc.stderr
    assert not (tmp_path / "out").exists()
