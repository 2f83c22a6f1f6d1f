"""Where the simulators are found: :mod:`rtl.toolchain` (``rtl`` lints with Verilator and may not import ``sim``).

This module keeps the old import path ``sim.toolchain`` working.
"""

from rtl.toolchain import SIMULATORS, prepare_simulator, simulator_available, verilator_root  # noqa: F401

__all__ = ["SIMULATORS", "prepare_simulator", "simulator_available", "verilator_root"]
