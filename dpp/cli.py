"""Old import path of the ``dpp`` command line, which now lives on top of every layer in :mod:`analysis.cli`.

``from dpp.cli import app, run`` and ``python -m dpp.cli`` keep working; the import is deferred to first use,
so nothing in ``dpp`` depends on the layers above it when this module is merely imported.
"""

from __future__ import annotations

from typing import Any


def run() -> None:
    """The ``dpp`` entry point (see :func:`analysis.cli.run`)."""
    from analysis.cli import run as _run

    _run()


def __getattr__(name: str) -> Any:  # ``app``, ``INTERRUPTED``, ...
    import analysis.cli

    return getattr(analysis.cli, name)


if __name__ == "__main__":
    run()
