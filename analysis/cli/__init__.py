"""The ``dpp`` command line: one typer app; each sub-command is a thin module ``analysis/cli/<name>.py``.

The CLI sits on top of every layer (it may import ``dpp``, ``rtl``, ``sim`` and ``analysis``); the work itself
lives in those layers (``dpp.export.run_export``, ``sim.single_layer.run_sim``, ``sim.bench``, ...), so scripts
and tests call the same functions without the command line.

Errors we raise on purpose (:class:`dpp.errors.DPPError`) and OS errors on the user's paths are printed as one
line and exit with status 2; anything else is a bug and shows its traceback.
"""

from __future__ import annotations

import sys

import typer

from analysis.cli import bench_sim as _bench_sim
from analysis.cli import bench_train as _bench_train
from analysis.cli import compare as _compare
from analysis.cli import export as _export
from analysis.cli import flow as _flow
from analysis.cli import pack as _pack
from analysis.cli import prune as _prune
from analysis.cli import report as _report
from analysis.cli import rtl as _rtl
from analysis.cli import sim as _sim
from analysis.cli import sweep as _sweep
from analysis.cli import timing as _timing
from analysis.cli import train as _train
from dpp import __version__
from dpp.errors import DPPError
from dpp.paths import describe_os_error

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
    version: bool | None = typer.Option(
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
app.command("prune")(_prune.prune)
app.command("export")(_export.export)
app.command("compare")(_compare.compare)
app.command("bench-train")(_bench_train.bench_train)
app.command("flow")(_flow.flow)
app.command("timing")(_timing.timing)


INTERRUPTED = "interrupted: finished work is kept; run the same command again to resume"


def run() -> None:
    """Entry point: our refusals and OS errors on the user's paths become one line on stderr and exit 2.

    Only :class:`dpp.errors.DPPError` (every check and refusal of the project) and ``OSError`` (a path that
    cannot be read or written) are turned into one line; any other exception is a bug and keeps its traceback.
    Ctrl-C prints one line and exits 130; everything written so far is complete (atomic writes), and sweeps and
    flows resume from it.
    """
    try:
        app(standalone_mode=True)
    except DPPError as exc:
        _fail(f"error: {exc}", 2)
    except OSError as exc:
        _fail(f"error: {describe_os_error(exc)}", 2)
    except KeyboardInterrupt:
        _fail(INTERRUPTED, 130)
    except SystemExit as exc:  # typer turns Ctrl-C into a silent exit 130: say what happened
        if exc.code == 130 and isinstance(getattr(exc.__context__, "__cause__", None), KeyboardInterrupt):
            _fail(INTERRUPTED, 130)
        raise


def _fail(message: str, code: int) -> None:
    typer.secho(message, err=True, fg="red")
    sys.exit(code)


if __name__ == "__main__":
    run()
