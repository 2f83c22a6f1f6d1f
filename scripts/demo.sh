#!/usr/bin/env bash
# Set everything up, then run the main job: pack a random layer as k-of-n and check it against the reference.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/dpp pack --rows 256 --cols 784 --k 2 --n 8 --weight-bits 4 --seed 0 --out out/pack
