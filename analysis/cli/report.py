"""``dpp report RESULTS/ --out REPORT/``: HTML (self-contained) + Markdown report of a results folder."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer
from rich.console import Console

from dpp.paths import check_in_dir, check_out_dir
from dpp.progress import step


def report(
    results: Path = typer.Argument(..., help="RESULTS folder (layout: see analysis/report_data.py)."),
    out: Path = typer.Option(..., "--out", help="REPORT folder: report.html, report.md, figures/, tables/."),
    title: str = typer.Option("DPP hardware co-design report", "--title", help="Title of the report."),
) -> None:
    """Write the report; sections whose inputs are missing say "no data"."""
    from analysis.report import build_report

    results = check_in_dir(results, "RESULTS")
    if (results / "compare_study.json").is_file():  # a `dpp compare --preset` study: its own report
        from analysis.report_compare import build_compare_report as build_report
    out = check_out_dir(out)
    argv = (
        ["dpp", *sys.argv[1:]]
        if sys.argv and Path(sys.argv[0]).name == "dpp"
        else ["dpp", "report", str(results), "--out", str(out)]
    )
    with step(f"writing the report of {results.name}"):
        res = build_report(results, out, report_command=shlex.join(argv), title=title)
    empty = [s.title for s in res.sections if s.no_data]
    console = Console()
    console.print(
        f"wrote {res.html} and {res.markdown.name} ({len(res.sections)} sections"
        + (f"; no data for: {', '.join(empty)}" if empty else "")
        + ")"
    )
