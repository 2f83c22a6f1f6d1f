"""Old import path: :mod:`dpp.pack`."""

from dpp.pack import PackResult, run_pack  # noqa: F401
