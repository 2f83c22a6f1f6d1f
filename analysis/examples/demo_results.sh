#!/usr/bin/env bash
# Build a RESULTS/ folder end to end and report on it: trained `digits` runs (dpp, magnitude, unstructured,
# dense), the sweep of analysis/examples/sweep_digits.yaml (analytic model, 2 points in RTL, ice40 area),
# then `dpp report`. Every command is recorded in RESULTS/commands.json.
# Usage: analysis/examples/demo_results.sh [RESULTS] [REPORT]      (EPOCHS=15 by default)
set -euo pipefail
R=${1:-results/digits}
REP=${2:-$R/report}
EPOCHS=${EPOCHS:-15}
run() { python -m analysis.commands_log "$R" "$1" -- "${@:2}"; }
for k in 1 2; do
  for method in dpp magnitude unstructured; do
    run train dpp train --model digits --method "$method" --k "$k" --n 4 --epochs "$EPOCHS" \
      --out "$R/runs/${method}_k${k}n4"
  done
done
run train dpp train --model digits --method dense --epochs "$EPOCHS" --out "$R/runs/dense"
dpp sweep analysis/examples/sweep_digits.yaml --out "$R" --workers 2
dpp report "$R" --out "$REP"
