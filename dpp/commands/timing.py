"""Old import path: :mod:`analysis.cli.timing`."""

from analysis.cli.timing import TIMING_SCHEMA, TIMING_SCHEMA_VERSION, format_report, timing  # noqa: F401
