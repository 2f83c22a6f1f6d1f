"""Old import path: :func:`dpp.export.run_export`."""

from dpp.export import run_export  # noqa: F401
