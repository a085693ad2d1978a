#!/usr/bin/env bash
# Installs everything (apt and Python packages) and runs the default test suite.
# Extra arguments go to pytest, e.g. `scripts/test.sh -m slow` for the long runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
exec python3 -m pytest -q -ra "$@"
