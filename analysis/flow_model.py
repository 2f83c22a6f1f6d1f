"""The analytic model around the flow's design: what the cycles, memory, energy and Pareto sections plot.

``dpp flow`` measures one design (its k/n and PE count) in RTL. The report's design-space sections need more
points, so the flow also runs the sweep engine (:mod:`analysis.sweep`, analytic model only: no RTL, no Yosys)
over the trained network's layer shapes at k/n in :data:`MODEL_KN` (plus the flow's own k/n) and two PE
counts (the flow's and twice it, or half when twice is over the hardware's limit), on every architecture the
flow ran. Storage bits, counters, energy and the per-inference columns are the sweep's own; the table is
written as ``RESULTS/sweep.parquet`` / ``sweep.csv`` (+ ``sweep_config.json``, ``points/``), the layout
:mod:`analysis.report_data` reads, and the report joins the flow's trained runs on (arch, k, n, granularity).

The sweep's batch is the flow's image count (capped as the flow caps its hardware runs), so the model point of
the flow's own design reproduces the RTL counters of its fully connected layers.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from analysis.sweep import SweepOutcome, run_sweep
from analysis.sweep_config import SweepConfig, parse_config
from dpp.errors import DPPError

MODEL_KN: tuple[tuple[int, int], ...] = ((1, 8), (2, 8), (4, 8))  #: densities the model covers besides the flow's
MAX_PES = 64  #: the largest PE count the hardware generator accepts (``rtl.params``)
MODEL_SWEEP_NAME = "flow_model"


def model_pes(pes: int) -> tuple[int, int]:
    """The two PE counts of the model: the flow's and twice it (half of it when twice exceeds :data:`MAX_PES`)."""
    if pes < 1 or pes > MAX_PES:
        raise DPPError(f"pes must be in [1, {MAX_PES}] (got pes={pes})")
    if 2 * pes <= MAX_PES:
        return pes, 2 * pes
    return pes // 2, pes


def _kofn_layers(layers: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The flow's layer records of its k-of-n design (else of the first architecture), in layer order."""
    layers = list(layers)
    if not layers:
        raise DPPError("the flow has no layer records to take the network's layer shapes from")
    arch = "kofn" if any(r["arch"] == "kofn" for r in layers) else layers[0]["arch"]
    return sorted((r for r in layers if r["arch"] == arch), key=lambda r: int(r["layer"]))


def flow_model_config(config: dict[str, Any], layers: Iterable[dict[str, Any]], images: int) -> SweepConfig:
    """The sweep config of the model around a flow (``config``: ``asdict(FlowConfig)``; ``layers``: the flow's
    layer records, as in ``flow.json``; ``images``: the images the flow ran)."""
    from analysis.flow import batch_chunk

    recs = _kofn_layers(layers)
    if images < 1:
        raise DPPError(f"images must be >= 1 (got images={images})")
    ks = sorted({k for k, _ in MODEL_KN} | {int(config["k"])})
    ns = sorted({n for _, n in MODEL_KN} | {int(config["n"])})
    banks = int(config.get("act_banks", 0) or 0)
    act_bits = Counter(int(r["design"].get("act_bits", 8)) for r in recs).most_common(1)[0][0]
    out_bits = Counter(int(r["design"].get("out_bits", 8)) for r in recs).most_common(1)[0][0]
    batch = min(images, batch_chunk(max(int(r["cols"]) for r in recs)))
    raw_layers = []
    for r in recs:
        layer = {
            "name": f"layer{int(r['layer'])}",
            "rows": int(r["rows"]),
            "cols": int(r["cols"]),
            "vectors": max(1, int(r["batch"]) // images),
        }  # a conv layer: its output positions per image
        block = int(r["design"].get("block", 1))
        if block > 1:
            layer["block"] = [block]
        raw_layers.append(layer)
    return parse_config(
        {
            "name": MODEL_SWEEP_NAME,
            "seed": int(config.get("seed", 0)),
            "batch": batch,
            "grid": {
                "arch": list(config.get("archs", ("kofn", "dense", "csr"))),
                "k": ks,
                "n": ns,
                "block": [1],
                "pes": list(dict.fromkeys(model_pes(int(config["pes"])))),
                "weight_bits": [int(config["bits"])],
                "act_bits": [act_bits],
                "out_bits": [out_bits],
                "act_banks": [0, banks] if banks else [0],
            },
            "layers": raw_layers,
            "rtl_sample": 0,
            "area": {"enabled": False},
        }
    )


def check_flow_model_target(results: str | Path) -> None:
    """Refuse a results folder whose sweep table is another command's (``dpp sweep``): the flow's model table
    would replace it. A previous flow's model table is the flow's own and is replaced like its flow.json."""
    f = Path(results) / "sweep_config.json"
    if not f.is_file():
        return
    try:
        name = json.loads(f.read_text("utf-8")).get("name")
    except (ValueError, AttributeError):
        return  # unreadable: replaced
    if name != MODEL_SWEEP_NAME:
        raise DPPError(
            f"{Path(results)} holds the table of sweep {name!r} (sweep_config.json); the flow's model "
            f"table would replace it: choose another --out"
        )


def run_flow_model(flow: dict[str, Any], results: str | Path, *, progress: bool = False) -> SweepOutcome:
    """Evaluate the model around ``flow`` (the ``flow.json`` dict) into ``results`` (resumable, serial: a few
    seconds). Raises :class:`~dpp.errors.DPPError` when ``results`` holds another sweep's table
    (:func:`check_flow_model_target`)."""
    check_flow_model_target(results)
    cfg = flow_model_config(flow["config"], flow["layers"], int(flow["images"]))
    return run_sweep(
        cfg, results, serial=True, progress=progress, caps={"model": True, "rtl": False, "verilog": False}, force=True
    )  # a previous flow's model table (another k/n, PEs) is replaced, as flow.json is
