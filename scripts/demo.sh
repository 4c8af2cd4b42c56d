#!/usr/bin/env bash
# Set up .venv (if missing) and run the end-to-end demo on real scikit-learn models.
# `scripts/demo.sh --keep demo-output` keeps the demo repository, plots and reports.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv demo
exec python scripts/demo.py "$@"
