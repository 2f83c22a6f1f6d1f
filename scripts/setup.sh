#!/usr/bin/env bash
# Create .venv (if missing) and install the project with its dev extras. Idempotent; needs no apt package.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch is pinned exactly (==2.13.0) in pyproject.toml: it resolves to the local CPU wheel.
.venv/bin/python -m pip install -q -e '.[dev]'
