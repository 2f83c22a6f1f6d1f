"""Old import path: :mod:`dpp.compare`."""

from dpp.compare import ALL_METHODS, parse_grid, parse_ints, run_compare  # noqa: F401
