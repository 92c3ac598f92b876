#!/usr/bin/env bash
# The GPU check of pawkit issue #20 item 6: Qwen2.5-1.5B's architecture (random weights, bf16)
# trained a few webshop steps with PaW off and on; prints rollout tokens/s, update time, the PaW
# whole-step ratio, peak GPU memory and a CPU-fallback check (benchmarks/gpu_check.py says how).
#
#   bash benchmarks/gpu_check.sh [--dry-run] [gpu_check.py options and key=value overrides]
#
# Offline (HF_HUB_OFFLINE=1): nothing is downloaded; the tokenizer is in benchmarks/assets/ and the
# webshop catalog is generated into a temporary PAWKIT_CACHE. Runs from this checkout whether or not
# pawkit is pip-installed. The output also goes to $OUT/gpu_check.txt when OUT is set.
# Then, when a Python with vLLM is found (rollout.vllm.python's search: $PAWKIT_VLLM_PYTHON, the side
# venv of scripts/install-vllm.sh, this Python), benchmarks/rollout_engines.py compares HF and vLLM
# rollouts (issue #25 item 5; its exit status is reported, not returned). VLLM_CHECK_TIMEOUT: 600 s.
# Exit status: gpu_check.py's, 1 without a usable GPU, 124 when GPU_CHECK_TIMEOUT (default 480 s) ran out.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
LIMIT="${GPU_CHECK_TIMEOUT:-480}"

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export TQDM_DISABLE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 PYTHONUNBUFFERED=1
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-8}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-8}"
CACHE="$(mktemp -d "${TMPDIR:-/tmp}/pawkit-gpu-check-cache.XXXXXX")"
export PAWKIT_CACHE="$CACHE"
trap 'rm -rf "$CACHE"' EXIT

dry=0
for arg in "$@"; do [ "$arg" = "--dry-run" ] && dry=1; done
if [ "$dry" = 0 ]; then
    if command -v nvidia-smi >/dev/null 2>&1; then
        nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv,noheader || true
    else
        echo "note: nvidia-smi not found; asking torch" >&2
    fi
    if ! "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
        echo "error: torch sees no CUDA device (torch.cuda.is_available() is False): this check needs a GPU; on a CPU run: bash benchmarks/gpu_check.sh --dry-run" >&2
        exit 1
    fi
fi

log="$(mktemp "${TMPDIR:-/tmp}/pawkit-gpu-check.XXXXXX.txt")"
timeout --signal=TERM --kill-after=15 "$LIMIT" "$PYTHON" benchmarks/gpu_check.py "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
if [ "$rc" = 124 ]; then
    echo "error: the GPU check ran past ${LIMIT} s and was stopped (GPU_CHECK_TIMEOUT)" | tee -a "$log" >&2
fi
if [ "$dry" = 0 ]; then
    vpy="$("$PYTHON" -c 'from pawkit.rollout.vllm_server import find_python
try: print(find_python(None))
except Exception: pass' 2>/dev/null)"
    if [ -n "$vpy" ]; then
        echo "vLLM found ($vpy): HF vs vLLM rollouts (benchmarks/rollout_engines.py)" | tee -a "$log"
        timeout --signal=TERM --kill-after=15 "${VLLM_CHECK_TIMEOUT:-600}" "$PYTHON" benchmarks/rollout_engines.py --steps 2 \
            model.device=cuda rollout.vllm.enforce_eager=true 2>&1 | tee -a "$log"
        echo "rollout_engines exit status: ${PIPESTATUS[0]}" | tee -a "$log"
    else
        echo "vLLM: no Python here imports it (bash scripts/install-vllm.sh with PAWKIT_VLLM_PACKAGE=vllm==0.32.0); engine comparison skipped" | tee -a "$log"
    fi
fi
if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT" && cp "$log" "$OUT/gpu_check.txt"
fi
rm -f "$log"
exit "$rc"
