"""The ``dpp`` command line: one typer app; each sub-command lives in ``dpp/commands/<name>.py``.

Errors we raise on purpose (``ValueError``, ``TypeError``, :class:`dpp.errors.DPPError`) are printed as one
line and exit with status 2, never as a traceback.
"""

from __future__ import annotations

import sys
from typing import Optional

import typer

from dpp import __version__
from dpp.commands import pack as _pack
from dpp.commands import bench_sim as _bench_sim, sim as _sim
from dpp.commands import rtl as _rtl
from dpp.commands import report as _report
from dpp.commands import sweep as _sweep
from dpp.commands import train as _train
from dpp.commands import export as _export
from dpp.commands import compare as _compare
from dpp.commands import bench_train as _bench_train
from dpp.commands import flow as _flow

app = typer.Typer(
    name="dpp",
    help="Dynamic Probabilistic Pruning hardware co-design: train, export, generate RTL, simulate, report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dpp {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Dynamic Probabilistic Pruning hardware co-design simulator."""


app.command("pack")(_pack.pack)
app.command("sim")(_sim.sim)
app.add_typer(_bench_sim.app, name="bench-sim")
app.command("rtl")(_rtl.rtl)
app.command("sweep")(_sweep.sweep)
app.command("report")(_report.report)
app.command("train")(_train.train)
app.command("export")(_export.export)
app.command("compare")(_compare.compare)
app.command("bench-train")(_bench_train.bench_train)
app.command("flow")(_flow.flow)
# Later issues register here: train, export, compare, rtl, sim, sweep, report, flow.


def run() -> None:
    """Entry point that turns our own errors into one line on stderr and exit status 2."""
    try:
        app(standalone_mode=True)
    except (ValueError, TypeError) as exc:  # includes DPPError
        typer.secho(f"error: {exc}", err=True, fg="red")
        sys.exit(2)


if __name__ == "__main__":
    run()
