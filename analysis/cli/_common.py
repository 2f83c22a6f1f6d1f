"""Checks every command shares, so the same bad value gets the same one-line message everywhere, and the epoch
bar every training command shows."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from dpp.checks import check_int
from dpp.errors import PathError
from dpp.paths import check_out_dir


def check_threads(threads: int) -> int:
    """``--threads``: at least 1."""
    return check_int("--threads", threads, lo=1)


def check_new_run_dir(out: Path, force: bool, marker: str = "result.json", option: str = "--out") -> Path:
    """``out`` checked writable; refused when it already holds a finished result (``marker``) unless ``force``."""
    path = check_out_dir(out, option)
    if (path / marker).exists() and not force:
        raise PathError(f"{option} {path} already holds {marker}: pass --force to overwrite it, or choose a new folder")
    return path


def epoch_progress(console: Console, *, transient: bool = False) -> Progress:
    """The bar of a training run (``dpp train``, ``dpp prune``, ``dpp compare``): its description, epochs done of
    the total, the ``status`` field (:func:`epoch_status` of the last epoch) and the elapsed time."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
        transient=transient,
    )


def epoch_status(rec: dict[str, float]) -> str:
    """The bar's status after an epoch: its training loss and test accuracy."""
    return f"loss {rec['train_loss']:.3f} test {rec['test_accuracy']:.4f}"
