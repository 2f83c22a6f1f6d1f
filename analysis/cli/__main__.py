"""``python -m analysis.cli``: the ``dpp`` command line."""

from analysis.cli import run

run()
