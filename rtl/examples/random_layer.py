"""Write a random layer for a `dpp rtl` build as the example driver's program file, with its reference outputs.

usage: python rtl/examples/random_layer.py RTL_DIR OUT_PREFIX [--rows R] [--cols C] [--batch B] [--seed S]

Reads RTL_DIR/params.json, draws a layer in the build's weight format (its registry entry's ``prune``: k of
every n weights kept, stored as the array takes them), inputs, biases and requantisation, and writes
OUT_PREFIX.hex (``rtl.program.program_text``: one ``SEL ADDR DATA`` load-port write per line) and
OUT_PREFIX.expected.json (``{"outputs": [[...]], "rows", "cols", "batch", "row_nnz"}``: the outputs of
``dpp.reference.linear_int``, what the driver must print). The counter model is ``sim.model.predict_counters``
(``tests/rtl/test_example_driver.py`` compares the driver with both).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dpp.serialize import atomic_write_text
from rtl.params import ArrayParams
from rtl.program import LayerProgram, program_layer, program_text


@dataclass
class RandomLayer:
    """A drawn layer: its program, weights (in the build's format), inputs, biases and requantisation."""

    prog: LayerProgram
    W: Any
    x: np.ndarray
    bias: np.ndarray
    multiplier: int
    shift: int
    relu: bool


def random_layer(params: ArrayParams, rows: int, cols: int, batch: int, seed: int) -> RandomLayer:
    """A random ``(rows, cols)`` layer over ``batch`` vectors on ``params``, seeded."""
    rng = np.random.default_rng(seed)
    lim = 1 << (params.weight_bits - 1)
    w = rng.integers(-lim, lim, size=(rows, cols))
    W = params.array_arch.prune(w, params.k, params.n, params.block, params.weight_bits)  # the build's format
    alim = 1 << (params.act_bits - 1)
    x = rng.integers(-alim, alim, size=(batch, cols))
    typical = max(1, int(lim * alim * np.sqrt(cols)) // 2)  # a row total's usual size, so outputs spread
    lo, hi = params.bias_range
    bias = rng.integers(max(lo, -typical), min(hi, typical) + 1, size=rows)
    multiplier = int(rng.integers(1, 1 << 15))
    shift = min(48, max(1, (multiplier * typical).bit_length() - params.out_bits + 2))
    relu = bool(rng.integers(0, 2))
    return RandomLayer(program_layer(params, W, x, bias, multiplier, shift, relu), W, x, bias, multiplier, shift, relu)


def write_layer(rtl_dir: Path, prefix: Path, rows: int, cols: int, batch: int, seed: int) -> LayerProgram:
    """Write ``prefix.hex`` and ``prefix.expected.json`` for the build in ``rtl_dir``; return the program."""
    params = ArrayParams.from_json((Path(rtl_dir) / "params.json").read_text())
    prog = random_layer(params, rows, cols, batch, seed).prog
    atomic_write_text(Path(f"{prefix}.hex"), program_text(prog))
    expected = {
        "rows": prog.rows,
        "cols": prog.cols,
        "batch": prog.batch,
        "outputs": prog.expected.tolist(),
        "row_nnz": None if prog.row_nnz is None else [int(v) for v in prog.row_nnz],
    }
    atomic_write_text(Path(f"{prefix}.expected.json"), json.dumps(expected) + "\n")
    return prog


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rtl_dir", type=Path)
    parser.add_argument("prefix", type=Path)
    parser.add_argument("--rows", type=int, default=0, help="output rows (default: the build's max_rows)")
    parser.add_argument("--cols", type=int, default=0, help="input columns (default: the build's max_cols)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    params = ArrayParams.from_json((args.rtl_dir / "params.json").read_text())
    prog = write_layer(
        args.rtl_dir, args.prefix, args.rows or params.max_rows, args.cols or params.max_cols, args.batch, args.seed
    )
    print(f"wrote {args.prefix}.hex ({len(prog.writes)} writes) and {args.prefix}.expected.json")


if __name__ == "__main__":
    main()
