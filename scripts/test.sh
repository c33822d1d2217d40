#!/usr/bin/env bash
# Install everything the tests need into .venv, then run the whole suite (unit, UI, and real
# vLLM / Whisper / tmux integration tests).
set -euo pipefail
cd "$(dirname "$0")/.."
# System tools the tests drive: espeak-ng + sox make test speech, tmux runs the real TUI;
# debian-faq is a real book in HTML and PDF (/usr/share/doc/debian/FAQ) the document loaders read.
need=()
for tool in espeak-ng sox tmux; do command -v "$tool" >/dev/null || need+=("$tool"); done
[ -f /usr/share/doc/debian/FAQ/debian-faq.en.pdf.gz ] || need+=(debian-faq)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "please install: ${need[*]} (e.g. sudo apt-get install ${need[*]})" >&2
    exit 2
  fi
fi
scripts/setup.sh --dev
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec .venv/bin/python -m pytest -v -rs "$@"
