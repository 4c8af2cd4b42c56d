#!/usr/bin/env bash
# Set up .venv (if missing) and run the whole test suite. Extra arguments go to pytest,
# e.g. `scripts/test.sh -m slow` for the long fault-injection and scale runs, or
# `scripts/test.sh -m bench` for scripts/bench.py end to end (--quick, with dvc).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv test
if [ -x scripts/services.sh ]; then
    scripts/services.sh  # system packages the remote tests need (openssh-server)
fi
set +e
python -m pytest -n 2 -p no:cacheprovider "$@"
code=$?
set -e
# pytest exits 5 when a selection (e.g. -m slow on a machine without it) ran nothing.
if [ "$code" -eq 5 ]; then code=0; fi
exit "$code"
