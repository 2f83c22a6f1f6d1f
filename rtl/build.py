"""``make_array(params)``: the one place that maps an architecture name to its Amaranth component."""

from __future__ import annotations

from amaranth.lib import wiring

from rtl.csr import CsrArray
from rtl.lockstep import LockstepArray
from rtl.params import ArrayParams
from dpp.errors import ArgumentTypeError


def make_array(params: ArrayParams) -> wiring.Component:
    """The top-level component for ``params.arch`` (Verilog name ``params.top_name``)."""
    if not isinstance(params, ArrayParams):
        raise ArgumentTypeError(f"params must be an ArrayParams (got {type(params).__name__})")
    if params.arch == "csr":
        return CsrArray(params)
    return LockstepArray(params)
