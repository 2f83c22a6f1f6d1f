"""``make_array(params)``: a build's Amaranth component, the one its registry entry names (:mod:`rtl.archs`)."""

from __future__ import annotations

from amaranth.lib import wiring

from dpp.errors import ArgumentTypeError
from rtl.params import ArrayParams


def make_array(params: ArrayParams) -> wiring.Component:
    """The top-level component for ``params`` (Verilog name ``params.top_name``)."""
    if not isinstance(params, ArrayParams):
        raise ArgumentTypeError(f"params must be an ArrayParams (got {type(params).__name__})")
    return params.array_arch.component()(params)
