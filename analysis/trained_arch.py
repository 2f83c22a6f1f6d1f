"""k-of-n vs dense vs CSR on real trained networks: each array runs the network trained for it.

The synthetic layer of ``dpp bench-sim arch`` fixes one weight distribution; here the k-of-n array runs a
DPP-trained network (exactly k of n per group), the CSR array runs an *unstructured*-trained network of the
same model at the same density (its own trained sparsity pattern and row imbalance), and the dense array
runs the model's shapes densely. Cycles and traffic come from the analytic model :func:`sim.model.predict_counters`
(equal to the RTL counters, tested); with ``simulate=True`` every layer is also run in RTL on its real
input (the reference chain of test images) and checked bit-exact with counters equal to the model.

Both networks come from ``dpp export`` (:class:`dpp.network.IntNetwork`); their matmul layers must have the
same shapes. A convolution runs as its im2col matrix, one input vector per output position.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from analysis.flow import batch_chunk, layer_matrix, storage_bits_of
from dpp.checks import check_int
from dpp.errors import DPPError, SimulationError
from dpp.kofn import KofNMatrix
from dpp.network import IntNetwork
from rtl.archs import ARRAYS, KOFN


def pair_k_n(kofn_net: IntNetwork, csr_net: IntNetwork) -> tuple[int, int]:
    """``(k, n)`` of the DPP network; a clear error when the two networks do not describe one model."""
    if len(kofn_net.layers) != len(csr_net.layers):
        raise DPPError(
            f"the networks differ in matmul layers: {len(kofn_net.layers)} (k-of-n) vs {len(csr_net.layers)} (CSR)"
        )
    for i, (a, b) in enumerate(zip(kofn_net.layers, csr_net.layers)):
        if (a.rows, a.cols) != (b.rows, b.cols):
            raise DPPError(f"layer {i}: shapes differ, {a.rows}x{a.cols} (k-of-n) vs {b.rows}x{b.cols} (CSR)")
    kofn = [layer.weights for layer in kofn_net.layers if isinstance(layer.weights, KofNMatrix)]
    if not kofn:
        raise DPPError("the k-of-n network has no k-of-n layer (export a DPP run: dpp export RUN --out NET)")
    ks = {(m.k, m.n) for m in kofn}
    if len(ks) != 1:
        raise DPPError(f"the k-of-n network mixes k/n values {sorted(ks)}; expected one")
    return ks.pop()


def _params(array: str, k: int, n: int, pes: int, layer: Any, matrix: Any, batch: int, act_banks: int = 0) -> Any:
    from sim.workloads import array_params

    block = matrix.block if isinstance(matrix, KofNMatrix) else 1
    n_of = matrix.n if isinstance(matrix, KofNMatrix) else n
    return array_params(
        array,
        k,
        n_of,
        pes,
        layer.rows,
        layer.cols,
        batch,
        block=block,
        weight_bits=layer.weight_bits,
        act_bits=layer.act_bits,
        out_bits=layer.out_bits,
        act_banks=act_banks,
    )


def compare_trained(
    kofn_net: IntNetwork,
    csr_net: IntNetwork,
    x_int: np.ndarray,
    *,
    pes: int,
    act_banks: int = 0,
    simulate: bool = False,
    on_layer: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """One row per matmul layer (and a ``"total"`` row): cycles of the three designs and their ratios.

    ``act_banks`` > 0 adds the CSR array with one activation memory in that many banks (``csr_banked``,
    :mod:`rtl.csr_banked`) on the same unstructured network.

    ``x_int``: quantised input images (``IntNetwork.quantize_input``); each layer's batch is its number of
    input vectors (images, times output positions for a convolution). ``simulate``: also run every layer in
    RTL (Verilator) and raise :class:`~dpp.errors.SimulationError` unless it is bit-exact with counters equal
    to the model.
    """
    from sim.model import predict_counters

    pes = check_int("pes", pes, lo=1)
    k, n = pair_k_n(kofn_net, csr_net)
    ios = {"kofn": kofn_net.layer_io(x_int), "csr": csr_net.layer_io(x_int)}
    act_banks = check_int("act_banks", act_banks, lo=0)
    rows: list[dict[str, Any]] = []
    designs = [a for a in ARRAYS if act_banks or not a.banked]  # registry order; the banked CSR with banks
    for i, (kl, cl) in enumerate(zip(kofn_net.layers, csr_net.layers)):
        row: dict[str, Any] = {"layer": i, "kind": kl.kind, "rows": kl.rows, "cols": kl.cols}
        mats = {}
        for entry in designs:
            design = entry.label
            unstructured = entry.trained_method == "unstructured"  # runs the network trained for it
            array, matrix = mats[design] = layer_matrix(entry.arch, cl if unstructured else kl)
            io = ios["csr" if unstructured else "kofn"][i]
            batch = int(io.x.shape[0])
            params = _params(
                array, k, n, pes, cl if unstructured else kl, matrix, batch, act_banks if entry.banked else 0
            )
            columns = matrix if params.array_arch.model_needs else None  # a CSR layer: its row lengths, columns
            counters = predict_counters(params, kl.rows, kl.cols, batch, csr=columns)
            if simulate:
                if on_layer is not None:
                    on_layer(f"layer {i}: {design} design on the {array} array, batch {batch}")
                _simulate_checked(params, matrix, io, f"{design} design, layer {i}")
            row["batch"] = batch
            row[f"{design}_array"] = array
            row[f"{design}_cycles"] = counters["cycles"]
            row[f"{design}_mac_ops"] = counters["mac_ops"]
            row[f"{design}_storage_bits"] = storage_bits_of(matrix, kl)
        row["csr_density"] = mats["csr"][1].nnz / (kl.rows * kl.cols)
        lengths = mats["csr"][1].row_lengths()
        row["csr_row_nnz_max_over_mean"] = float(lengths.max() / lengths.mean()) if lengths.mean() > 0 else 0.0
        rows.append(_with_ratios(row))
    total: dict[str, Any] = {"layer": "total"}
    for key in rows[0]:
        if key.endswith(("_cycles", "_storage_bits")):
            total[key] = sum(r[key] for r in rows)
    rows.append(_with_ratios(total))
    return rows


def _with_ratios(row: dict[str, Any]) -> dict[str, Any]:
    for design in (a.label for a in ARRAYS if a is not KOFN):
        if f"{design}_cycles" in row:
            row[f"{design}_over_kofn"] = row[f"{design}_cycles"] / row["kofn_cycles"]
    return row


def _simulate_checked(params: Any, matrix: Any, io: Any, what: str) -> None:
    """Run the layer in RTL (in chunks of at most ``batch_chunk`` vectors, as the flow does); raise unless
    every chunk is bit-exact, its counters equal the model and the outputs equal the network's reference."""
    from dataclasses import replace

    from sim.run import Layer, simulate_layers

    step = min(params.max_batch, batch_chunk(params.max_cols))
    chunk_params = replace(params, max_batch=step)
    runs = simulate_layers(
        chunk_params,
        [
            Layer(matrix, io.x[i : i + step], io.bias, io.multiplier, io.shift, io.relu)
            for i in range(0, len(io.x), step)
        ],
    )
    for res in runs:
        res.check(what)
    if not np.array_equal(np.concatenate([r.outputs for r in runs]), io.y):
        raise SimulationError(f"{what}: RTL output differs from the network's reference output")
