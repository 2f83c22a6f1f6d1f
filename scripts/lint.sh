#!/usr/bin/env bash
# Lint and type-check (what CI runs after the tests): ruff lint and format check over the whole tree, mypy over
# the four packages.
# Rules and settings live in pyproject.toml ([tool.ruff], [tool.mypy]).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
