"""``dpp flow --net NET/ --data SPEC``: an exported network on the arrays in RTL (the work is analysis.flow_net)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from analysis.cli._common import check_threads
from dpp.errors import DPPError
from dpp.paths import check_in_dir, check_out_dir

DEFAULT_IMAGES = 100


def _print(result: dict[str, Any]) -> None:
    console = Console() if Console().is_terminal else Console(width=160)
    images = result["images"]
    t = Table(
        title=f"{images} images through the RTL, layer by layer; "
        f"{100 * result['mac_share']:.2f} % of the MACs on the arrays"
    )
    for c in (
        "array",
        "bit-exact",
        "counters = model",
        "classes = reference",
        "classes = torch",
        "RTL accuracy",
        "cycles / image",
        "energy / image (nJ)",
        "k-of-n speed-up",
    ):
        t.add_column(c, justify="left" if c == "array" else "right")
    for arch, s in result["archs"].items():
        t.add_row(
            arch,
            "yes" if s["bit_exact"] else "NO",
            "yes" if s["counters_match"] else "NO",
            f"{s['classes_equal_reference']}/{images}",
            "-" if s["classes_equal_torch"] is None else f"{s['classes_equal_torch']}/{images}",
            f"{s['rtl_accuracy']:.3f}",
            f"{s['cycles_per_image']:,.0f}",
            f"{s['energy_per_image_pj'] / 1000:.2f}",
            f"{s['kofn_speedup']:.2f}x" if "kofn_speedup" in s else "-",
        )
    console.print(t)
    host = sorted({nd["op"] for nd in result["nodes"] if nd["where"] == "host"})
    console.print(
        f"on the arrays: every matmul ({sum(nd['where'] == 'array' for nd in result['nodes'])} nodes); "
        f"on the host: {', '.join(host) or 'nothing'}"
    )
    console.print(f"done in {result['seconds']:.0f} s")


def flow_net(
    net: Path,
    data: str | None,
    normalize: str | None,
    archs: str | None,
    *,
    images: int | None,
    pes: int,
    out: Path,
    threads: int,
    other: dict[str, Any],
) -> None:
    """``dpp flow --net``: checks the options, runs :func:`analysis.flow_net.run_flow_net`, prints the table.

    The arrays get the network's k (its k-of-n layers'), so ``--k`` does not apply.
    """
    import torch

    from analysis.flow_net import NetFlowConfig, flow_net_ok, parse_archs, run_flow_net
    from rtl.archs import ARCHS

    given = [f"--{name}" for name, value in other.items() if value not in (None, False)]
    if given:
        raise DPPError(f"{', '.join(given)} cannot be combined with --net (the network is already trained)")
    if data is None:
        raise DPPError("dpp flow --net needs --data SPEC (the images to run)")
    cfg = NetFlowConfig(
        net=str(check_in_dir(net, "--net")),
        data=data,
        normalize=normalize,
        images=DEFAULT_IMAGES if images is None else images,
        archs=parse_archs(archs) if archs is not None else ARCHS,
        pes=pes,
    )
    out = check_out_dir(out)
    torch.set_num_threads(check_threads(threads))
    result = run_flow_net(cfg, out)
    _print(result)
    Console().print(f"report: {out / 'report.md'}")
    if not flow_net_ok(result):
        raise typer.Exit(1)
