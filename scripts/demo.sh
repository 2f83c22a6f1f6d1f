#!/usr/bin/env bash
# Set everything up, then run the main job: the quick end-to-end flow (train DPP LeNet-300-100 on MNIST-5k,
# export, generate Verilog, run 100 test images through the whole network in RTL, dense + CSR baselines, report).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/dpp flow --quick --out results/flow "$@"
