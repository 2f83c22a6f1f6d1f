"""``dpp export RUN/ --out NET/``: the integer network of a trained run, checked against the torch model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from dpp.commands._common import check_threads
from dpp.paths import check_in_dir, check_out_dir
from dpp.progress import step
from dpp.serialize import atomic_write_text


def run_export(run_dir: Path, out: Path, bits: int | None = None) -> dict:
    """Export ``run_dir`` to ``out`` and measure prediction agreement on the test split; returns the report.

    A full-precision run is quantised after training (8-bit weights unless ``bits`` is given).
    """
    from dpp.data import load_dataset
    from dpp.export import export_network, measure_agreement
    from dpp.models import DATASET_OF
    from dpp.train import load_run

    cfg, qnet = load_run(run_dir)
    if bits is not None or qnet.bits is None:
        qnet.bits = bits if bits is not None else 8
    data = load_dataset(DATASET_OF[cfg.model])
    network = export_network(qnet, data.x_test, meta=dict(run=str(run_dir), model=cfg.model, method=cfg.method,
                                                             trained_bits=cfg.bits, weight_bits=qnet.bits))
    manifest = network.save(out)
    agree = measure_agreement(qnet, network, data.x_test, data.y_test)
    report = dict(network=str(manifest), images=agree.images, identical=agree.identical, agreement=agree.rate,
                  torch_accuracy=agree.torch_accuracy, int_accuracy=agree.int_accuracy, weight_bits=qnet.bits,
                  layers=[dict(kind=l.kind, format=l.format, rows=l.rows, cols=l.cols, multiplier=l.multiplier,
                               shift=l.shift) for l in network.layers])
    atomic_write_text(Path(out) / "agreement.json", json.dumps(report, indent=2) + "\n")
    return report


def export(
    run_dir: Path = typer.Argument(..., help="Run folder written by dpp train."),
    out: Path = typer.Option(..., "--out", help="Folder for network.json and the layer matrices."),
    bits: Optional[int] = typer.Option(None, "--bits", help="Weight bits for a full-precision run (default 8)."),
    threads: int = typer.Option(1, "--threads"),
) -> None:
    """Write the integer network (k-of-n matrices + manifest) and report agreement with the torch model."""
    import torch

    run_dir = check_in_dir(run_dir, "RUN")
    out = check_out_dir(out)
    torch.set_num_threads(check_threads(threads))
    with step(f"exporting {run_dir.name} and checking it against the torch model on the test set"):
        report = run_export(run_dir, out, bits)
    console = Console()
    console.print(f"saved {report['network']}")
    console.print(f"agreement with the fake-quantised torch model: {report['identical']}/{report['images']} "
                  f"= {100 * report['agreement']:.2f} %  (torch acc {report['torch_accuracy']:.4f}, "
                  f"integer acc {report['int_accuracy']:.4f})")
