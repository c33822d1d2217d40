#!/usr/bin/env bash
# Install everything the tests need into .venv, then run the whole suite (unit + real vLLM).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec .venv/bin/python -m pytest -v -rs "$@"
