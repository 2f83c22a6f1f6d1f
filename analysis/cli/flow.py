"""``dpp flow``: train → export → Verilog → whole network in RTL on real images → baselines → report."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from analysis.cli._common import check_threads
from dpp.paths import check_out_dir


def _print_summary(result: dict) -> None:
    console = Console()
    if not console.is_terminal:  # a log file or a pipe: room for every column instead of rich's 80
        console = Console(width=160)
    t = Table(title=f"{result['images']} test images through the RTL, layer by layer")
    timed = bool(result.get("timing"))
    for c in (
        "array",
        "network",
        "bit-exact",
        "counters = model",
        "classes = torch",
        "RTL accuracy",
        "cycles / image",
        *(("Fmax (MHz)", "time / image (us)") if timed else ()),
        "energy / image (nJ)",
        "k-of-n speed-up",
        "k-of-n energy saving",
    ):
        t.add_column(c, justify="left" if c == "array" else "right")
    for arch, s in result["archs"].items():
        t.add_row(
            arch,
            s.get("trained_method", "-"),
            "yes" if s["bit_exact"] else "NO",
            "yes" if s["counters_match"] else "NO",
            f"{s['classes_equal_torch']}/{result['images']}",
            f"{s['rtl_accuracy']:.3f}",
            f"{s['cycles_per_image']:.0f}",
            *(_timing_cells(s) if timed else ()),
            f"{s['energy_per_image_pj'] / 1000:.2f}",
            f"{s['kofn_speedup']:.2f}x" if "kofn_speedup" in s else "-",
            f"{s['kofn_energy_saving']:.2f}x" if "kofn_energy_saving" in s else "-",
        )
    console.print(t)
    for arch, s in result["archs"].items() if timed else ():
        if s.get("timing_message"):
            console.print(f"{arch}: no time per image: {s['timing_message']}")
    if "report" in result:
        console.print(f"report: {result['report']}")
    console.print(f"done in {result['seconds']:.0f} s")


def _timing_cells(s: dict) -> tuple[str, str]:
    """Fmax of the array's main build and its time per image ("-" without an Fmax)."""
    fmax, t = s.get("fmax_mhz"), s.get("time_per_image_s")
    return (f"{fmax:.1f}" if fmax else "-", f"{t * 1e6:.1f}" if t else "-")


def flow(
    quick: bool = typer.Option(
        False, "--quick", help="Small run (LeNet-300-100, 10 epochs, 100 images): <= 5 minutes on 2 cores."
    ),
    out: Path = typer.Option(Path("results/flow"), "--out", help="RESULTS folder (runs, nets, flow.json, report/)."),
    model: str | None = typer.Option(None, "--model", help="lenet300 | lenet5 | digits (default lenet300)."),
    k: int = typer.Option(1, "--k", help="Kept slots per group."),
    n: int = typer.Option(8, "--n", help="Slots per group."),
    granularity: str = typer.Option("weight", "--granularity", help="weight | kernel."),
    bits: int = typer.Option(4, "--bits", help="Weight bits (1..8; 1 = binary, stored as 2-bit words)."),
    epochs: int | None = typer.Option(None, "--epochs", help="Training epochs (quick: 10, full: 20)."),
    seed: int = typer.Option(0, "--seed"),
    pes: int = typer.Option(4, "--pes", help="PEs (output rows in parallel); each has k multipliers."),
    images: int | None = typer.Option(
        None, "--images", help="Test images through the RTL (quick: 100; full: 1000 for LeNet-300, 100 for LeNet-5)."
    ),
    area: bool | None = typer.Option(
        None, "--area/--no-area", help="Yosys ice40 area of every design (default: on in full mode)."
    ),
    threads: int = typer.Option(2, "--threads", help="torch CPU threads."),
    csr_net: str = typer.Option(
        "unstructured",
        "--csr-net",
        help="What the CSR baseline runs: unstructured (a "
        "network pruned unstructured at density k/n, trained too) | same (the DPP one).",
    ),
    act_banks: str = typer.Option(
        "0",
        "--act-banks",
        help="CSR design's activation memory: 0 = a replica per "
        "lane; B (a power of two) or Nx (N times the pes*k lanes) = one memory in B "
        "banks, k-of-n's memory size, with bank conflicts.",
    ),
    timing: bool | None = typer.Option(
        None,
        "--timing/--no-timing",
        help="Place and route every build on ECP5 "
        "(nextpnr; minutes per build, cached): Fmax, time and energy per image "
        "(default: on in full mode, off with --quick).",
    ),
    net: Path | None = typer.Option(
        None,
        "--net",
        help="NET/ folder written by dpp export: run that network (any "
        "graph) on the arrays, layer by layer, instead of training one; with --data.",
    ),
    data: str | None = typer.Option(
        None,
        "--data",
        help="SPEC of the images (mnist5k | digits | idx:DIR | npz:FILE | cifar10:DIR): with --net the test "
        "images; with --model the data it trains and runs on (default: the model's own, mnist5k or digits).",
    ),
    normalize: str | None = typer.Option(
        None, "--normalize", help="MEAN,STD[;...] per channel (default: --net the network's; --model pixels in [0, 1])."
    ),
    archs: str | None = typer.Option(None, "--archs", help="Comma-separated arrays (default kofn,dense,csr)."),
) -> None:
    """The end-to-end flow; writes RESULTS/flow.json, flow_layers.csv and RESULTS/report/. Exits 1 on a mismatch.

    Full mode (no --quick) also runs LeNet-5 through the hardware at weight and at kernel granularity.
    With --net NET/ it runs that exported network instead (analysis.flow_net).
    """
    if net is not None:
        from analysis.cli.flow_net import flow_net

        return flow_net(
            net,
            data,
            normalize,
            archs,
            images=images,
            pes=pes,
            out=out,
            threads=threads,
            other=dict(model=model, quick=quick, epochs=epochs),
        )
    import torch

    from analysis.flow import FlowConfig, flow_ok, run_flow
    from sim.workloads import parse_act_banks

    out = check_out_dir(out)
    torch.set_num_threads(check_threads(threads))
    from dataclasses import replace

    from analysis.flow_net import parse_archs
    from rtl.archs import ARCHS

    def n_images(name: str) -> int:  # LeNet-5's convolutions cost ~25x more cycles per image than LeNet-300
        return images if images is not None else (100 if quick or name == "lenet5" else 1000)

    first = model or "lenet300"
    main = FlowConfig(
        model=first,
        granularity=granularity,
        images=n_images(first),
        k=k,
        n=n,
        bits=bits,
        seed=seed,
        pes=pes,
        csr_net=csr_net,
        act_banks=parse_act_banks(act_banks, pes * k),
        epochs=epochs if epochs is not None else (10 if quick else 20),
        area=area if area is not None else not quick,
        timing=timing if timing is not None else not quick,
        data=data,
        normalize=normalize,
        archs=parse_archs(archs) if archs is not None else ARCHS,
    )
    configs = [main]
    if not quick and model is None:
        configs += [
            replace(main, model="lenet5", granularity=g, images=n_images("lenet5")) for g in ("weight", "kernel")
        ]
    ok = True
    for cfg in configs:
        dest = out if len(configs) == 1 else out / cfg.run_name
        result = run_flow(cfg, dest)
        _print_summary(result)
        ok = ok and flow_ok(result)
    if not ok:
        raise typer.Exit(1)
